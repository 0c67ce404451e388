/** Rewrites archives with chosen contents, to build tampered or hostile inputs for tests. */
import { createWriteStream, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import ZipStream from 'zip-stream';

export async function writeZipFile(path: string, files: Map<string, Buffer>): Promise<void> {
  const zip = new ZipStream();
  const out = zip.pipe(createWriteStream(path));
  for (const [name, bytes] of files) {
    await new Promise<void>((resolve, reject) => zip.entry(bytes, { name }, (e) => (e ? reject(e) : resolve())));
  }
  await zip.finalize();
  await once(out, 'close');
}

export async function writeTgzFile(path: string, root: string, files: Map<string, Buffer>): Promise<void> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const chunk of pack) chunks.push(chunk as Buffer);
  })();
  for (const [name, bytes] of files) pack.entry({ name: `${root}/${name}` }, bytes);
  pack.finalize();
  await collected;
  writeFileSync(path, gzipSync(Buffer.concat(chunks)));
}
