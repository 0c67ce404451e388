/**
 * Reads archives for assertions, independently of Kiln's own reader: yauzl and tar-stream
 * are used directly here, so a bug in packages/server/src/archive cannot hide itself.
 */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import tar from 'tar-stream';
import yauzl from 'yauzl';

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Every file of a zip, tgz (first segment stripped) or folder, by path. */
export async function readArchive(path: string): Promise<Map<string, Buffer>> {
  if (statSync(path).isDirectory()) return readFolder(path, '');
  const head = readFileSync(path).subarray(0, 2);
  if (head[0] !== 0x1f) return readZip(path);
  const stripped = new Map<string, Buffer>();
  for (const [name, bytes] of await readTgz(path)) stripped.set(name.split('/').slice(1).join('/'), bytes);
  return stripped;
}

function readFolder(root: string, prefix: string, out = new Map<string, Buffer>()): Map<string, Buffer> {
  for (const name of readdirSync(join(root, prefix))) {
    const rel = prefix === '' ? name : `${prefix}/${name}`;
    if (statSync(join(root, rel)).isDirectory()) readFolder(root, rel, out);
    else out.set(rel, readFileSync(join(root, rel)));
  }
  return out;
}

export function readZip(path: string): Promise<Map<string, Buffer>> {
  return new Promise((resolve, reject) => {
    const out = new Map<string, Buffer>();
    yauzl.open(path, { lazyEntries: true }, (error, zip) => {
      if (error) return reject(error);
      zip.on('end', () => resolve(out));
      zip.on('error', reject);
      zip.on('entry', (entry: yauzl.Entry) => {
        zip.openReadStream(entry, async (e, stream) => {
          if (e) return reject(e);
          const chunks: Buffer[] = [];
          for await (const chunk of stream) chunks.push(chunk as Buffer);
          out.set(entry.fileName, Buffer.concat(chunks));
          zip.readEntry();
        });
      });
      zip.readEntry();
    });
  });
}

/** Zip entry names in stored order, with their compression method. */
export function zipEntries(path: string): Promise<{ name: string; method: number }[]> {
  return new Promise((resolve, reject) => {
    const out: { name: string; method: number }[] = [];
    yauzl.open(path, { lazyEntries: true }, (error, zip) => {
      if (error) return reject(error);
      zip.on('end', () => resolve(out));
      zip.on('entry', (entry: yauzl.Entry) => {
        out.push({ name: entry.fileName, method: entry.compressionMethod });
        zip.readEntry();
      });
      zip.readEntry();
    });
  });
}

/** Every entry of a .tar.gz under its full stored name. */
export async function readTgz(path: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const extract = tar.extract();
  const done = (async () => {
    for await (const entry of extract) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      out.set(entry.header.name, Buffer.concat(chunks));
    }
  })();
  extract.end(gunzipSync(readFileSync(path)));
  await done;
  return out;
}
