import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { tempDir } from '../../../../test/support/kiln.js';
import { barelyCompresses } from './compressibility.js';
import type { ArchiveEntry } from './entry.js';

const bytes = (b: Buffer): ArchiveEntry => ({ path: 'x', origin: 'test', source: { kind: 'bytes', bytes: b } });

describe('barelyCompresses', () => {
  test('noise and float weights are stored; text, zeros and small files are deflated', async () => {
    const floats = Buffer.from(Float32Array.from({ length: 1 << 18 }, (_, i) => Math.cos(i * 0.37) * (1 + (i % 97))).buffer);
    expect(await barelyCompresses(bytes(randomBytes(1 << 20)))).toBe(true);
    expect(await barelyCompresses(bytes(floats))).toBe(true);
    expect(await barelyCompresses(bytes(Buffer.alloc(1 << 20)))).toBe(false);
    expect(await barelyCompresses(bytes(Buffer.from('{"label": "cat"}\n'.repeat(1 << 16))))).toBe(false);
    expect(await barelyCompresses(bytes(randomBytes(32 * 1024)))).toBe(false);
  });

  test('samples the start, the middle and the end: a file of weights after a text header is stored', async () => {
    const dir = tempDir();
    const file = join(dir, 'model.onnx');
    const content = Buffer.concat([Buffer.from('graph '.repeat(10_000)), randomBytes(4 << 20)]);
    writeFileSync(file, content);
    expect(await barelyCompresses({ path: 'model.onnx', origin: 'test', source: { kind: 'file', file, size: content.length } })).toBe(true);
  });
});
