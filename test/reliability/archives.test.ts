import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, test } from 'vitest';
import { answer, catalogueServer, expectRefusal, expectStillServing } from '../support/catalogue.js';
import { readArchive, sha256 } from '../support/read-archive.js';
import { TAR_END, tarEntry, tarHeader } from '../support/raw-tar.js';
import { rawZip, type RawEntry } from '../support/raw-zip.js';
import { writeZipFile } from '../support/write-archive.js';

const MB = 1024 * 1024;
const MANIFEST = 'MAR-INF/MANIFEST.json';

interface Hostile {
  /** The archive's bytes, built from the good linear.mar's files where it needs a real model. */
  build: (good: Map<string, Buffer>) => Buffer | Promise<Buffer>;
  ext?: 'mar' | 'tar.gz';
  status: number;
  code: string;
  message: RegExp;
}

type ManifestModel = { model: Record<string, unknown>; files: Record<string, { sha256: string; size: number }> };

/** The good archive's files, with the manifest rewritten by `change`. */
function withManifest(good: Map<string, Buffer>, change: (manifest: ManifestModel) => void): Map<string, Buffer> {
  const manifest = JSON.parse(good.get(MANIFEST)!.toString()) as ManifestModel;
  change(manifest);
  return new Map([...good, [MANIFEST, Buffer.from(JSON.stringify(manifest))]]);
}

const zipOf = (files: Map<string, Buffer>): RawEntry[] => [...files].map(([name, data]) => ({ name, data }));

// Every hostile archive is registered over the management API: refused with 400 and a message that
// names the archive's fault, nothing unpacked, and the server goes on serving.
const HOSTILE: Record<string, Hostile> = {
  'zip-slip: an entry that climbs out': {
    build: () => rawZip([{ name: '../../evil.sh', data: Buffer.from('rm -rf /') }]),
    status: 400,
    code: 'KILN_ERR_ARCHIVE_UNSAFE_ENTRY',
    message: /"\.\.\/\.\.\/evil\.sh" is refused: its path climbs out/,
  },
  'an absolute path': {
    build: () => rawZip([{ name: '/etc/cron.d/evil', data: Buffer.from('x') }]),
    status: 400,
    code: 'KILN_ERR_ARCHIVE_UNSAFE_ENTRY',
    message: /"\/etc\/cron\.d\/evil" is refused: its path is absolute/,
  },
  'a backslash path': {
    build: () => rawZip([{ name: '..\\evil.dll', data: Buffer.from('x') }]),
    status: 400,
    code: 'KILN_ERR_ARCHIVE_UNSAFE_ENTRY',
    message: /is refused: its path has a backslash/,
  },
  'a symlink in a zip': {
    build: () => rawZip([{ name: 'passwd', data: Buffer.from('/etc/passwd'), mode: 0o120777 }]),
    status: 400,
    code: 'KILN_ERR_ARCHIVE_UNSAFE_ENTRY',
    message: /"passwd" is refused: it is a link/,
  },
  'a hard link in a tgz': {
    ext: 'tar.gz',
    build: () =>
      gzipSync(Buffer.concat([tarEntry('m/a.txt', Buffer.from('a')), tarEntry('m/shadow', Buffer.alloc(0), '1', '/etc/shadow'), TAR_END])),
    status: 400,
    code: 'KILN_ERR_ARCHIVE_UNSAFE_ENTRY',
    message: /"m\/shadow" is refused: it is a link entry, not a regular file/,
  },
  'a symlink in a tgz': {
    ext: 'tar.gz',
    build: () => gzipSync(Buffer.concat([tarEntry('m/root', Buffer.alloc(0), '2', '/'), TAR_END])),
    status: 400,
    code: 'KILN_ERR_ARCHIVE_UNSAFE_ENTRY',
    message: /"m\/root" is refused: it is a symlink entry, not a regular file/,
  },
  'a duplicate entry': {
    build: () =>
      rawZip([
        { name: 'a.txt', data: Buffer.from('1') },
        { name: 'a.txt', data: Buffer.from('2') },
      ]),
    status: 400,
    code: 'KILN_ERR_ARCHIVE_UNSAFE_ENTRY',
    message: /"a\.txt" is refused: it appears twice/,
  },
  'more than 10,000 entries': {
    build: () => rawZip(Array.from({ length: 10_001 }, (_, i): RawEntry => ({ name: `f${i}`, data: Buffer.alloc(0) }))),
    status: 400,
    code: 'KILN_ERR_ARCHIVE_LIMIT',
    message: /more than 10000 entries/,
  },
  'a zip bomb (80 MB of zeros deflated)': {
    build: () => rawZip([{ name: 'zeros.bin', data: Buffer.alloc(80 * MB), deflate: true }]),
    status: 400,
    code: 'KILN_ERR_ARCHIVE_LIMIT',
    message: /a compression bomb/,
  },
  'a tgz bomb (100 MB of zeros)': {
    ext: 'tar.gz',
    build: () => gzipSync(Buffer.concat([tarHeader('m/zeros.bin', 100 * MB), Buffer.alloc(100 * MB), TAR_END])),
    status: 400,
    code: 'KILN_ERR_ARCHIVE_LIMIT',
    message: /a compression bomb/,
  },
  'a header that understates its size': {
    build: () => rawZip([{ name: 'small.bin', data: Buffer.alloc(100_000), deflate: true, declaredSize: 10 }]),
    status: 400,
    code: 'KILN_ERR_ARCHIVE_UNSAFE_ENTRY',
    message: /"small\.bin" is refused: (its data does not match the size it declares|holds more than)/,
  },
  'a truncated archive': {
    build: (good) => rawZip(zipOf(good)).subarray(0, 2_000),
    status: 400,
    code: 'KILN_ERR_ARCHIVE_UNREADABLE',
    message: /a-truncated-archive\.mar is not a readable zip archive: .*truncated/,
  },
  'random bytes': {
    build: () => Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) % 251)),
    status: 400,
    code: 'KILN_ERR_ARCHIVE_UNREADABLE',
    message: /is neither a zip \(\.mar\), a \.tar\.gz nor a folder/,
  },
  'an encrypted entry': {
    build: (good) => rawZip(zipOf(good).map((e) => (e.name === 'linear.onnx' ? { ...e, deflate: true, flags: 0x1 } : e))),
    status: 400,
    code: 'KILN_ERR_ARCHIVE_UNREADABLE',
    message: /: entry "linear\.onnx" is encrypted; Kiln reads only unencrypted archives$/,
  },
  'a manifest whose hash is wrong': {
    build: (good) =>
      rawZip(
        zipOf(
          withManifest(good, (m) => {
            m.files['linear.onnx']!.sha256 = sha256(Buffer.from('something else'));
          }),
        ),
      ),
    status: 400,
    code: 'KILN_ERR_ARCHIVE_INTEGRITY',
    message: /does not match its manifest:\n.*linear\.onnx/,
  },
  'a missing manifest': {
    build: (good) => rawZip(zipOf(good).filter((e) => e.name !== MANIFEST)),
    status: 400,
    code: 'KILN_ERR_ARCHIVE_UNREADABLE',
    message: /a-missing-manifest\.mar has no MAR-INF\/MANIFEST\.json; build archives with kiln archive/,
  },
  'a manifest that is not JSON': {
    build: (good) => rawZip(zipOf(new Map([...good, [MANIFEST, Buffer.from('{"model": ')]]))),
    status: 400,
    code: 'KILN_ERR_MANIFEST_INVALID',
    message: /MAR-INF\/MANIFEST\.json is not JSON: /,
  },
  'a handler outside the archive': {
    build: (good) =>
      rawZip(
        zipOf(
          withManifest(good, (m) => {
            m.model.handler = '../../../../tmp/x.mjs';
          }),
        ),
      ),
    status: 400,
    code: 'KILN_ERR_MANIFEST_INVALID',
    message: /is not a valid Kiln manifest:\n.*model\.handler.*\.\.\/\.\.\/\.\.\/\.\.\/tmp\/x\.mjs/,
  },
  'a version with a newline (a forged log line)': {
    build: (good) =>
      rawZip(
        zipOf(
          withManifest(good, (m) => {
            m.model.modelVersion = '1.0\n[linear] forged line';
          }),
        ),
      ),
    status: 400,
    code: 'KILN_ERR_MANIFEST_INVALID',
    message: /is not a valid Kiln manifest:\n.*model\.modelVersion/,
  },
  'a file the manifest does not list': {
    build: (good) => rawZip(zipOf(new Map([...good, ['extra.sh', Buffer.from('#!/bin/sh\n')]]))),
    status: 400,
    code: 'KILN_ERR_ARCHIVE_INTEGRITY',
    message: /does not match its manifest:\n.*extra\.sh/,
  },
};

const slug = (name: string) => name.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '');
const server = catalogueServer({
  prepare: async (dir) => {
    const good = await readArchive(join(dir, 'store/linear.mar'));
    for (const [name, hostile] of Object.entries(HOSTILE)) {
      writeFileSync(join(dir, 'store', `${slug(name)}.${hostile.ext ?? 'mar'}`), await hostile.build(good));
    }
    // The real archive rewritten by a zip library, to show the rewriting itself is not what is refused.
    await writeZipFile(join(dir, 'store/rewritten.mar'), good);
  },
});

describe('archives', () => {
  test('the good archive, rewritten, registers and serves (the hostile ones below differ from it only in their fault)', async () => {
    const s = server();
    const registered = await answer(await fetch(`${s.kiln.management}/models?url=rewritten.mar&model_name=rewritten`, { method: 'POST' }));
    expect(registered.json).toEqual({ status: 'Model "rewritten" Version: 1.0 registered with 1 initial workers' });
    await expectStillServing(s, ['rewritten']);
  });

  test.each(Object.entries(HOSTILE))('%s', async (name, hostile) => {
    const s = server();
    const file = `${slug(name)}.${hostile.ext ?? 'mar'}`;
    const got = await answer(await fetch(`${s.kiln.management}/models?url=${file}&model_name=hostile`, { method: 'POST' }));
    expectRefusal(got, hostile.status, hostile.code, hostile.message);
    // Nothing was registered under the name.
    expect((await fetch(`${s.kiln.management}/models/hostile`)).status).toBe(404);
    await expectStillServing(s, ['rewritten']);
  });
});
