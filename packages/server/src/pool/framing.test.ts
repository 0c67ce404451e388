import { PassThrough } from 'node:stream';
import { describe, expect, test } from 'vitest';
import { FrameReader, writeFrame } from './framing.js';

/** Everything writeFrame wrote for these messages, as one buffer. */
function framed(messages: unknown[]): Buffer {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  for (const message of messages) writeFrame(stream, message);
  return Buffer.concat(chunks);
}

const message = {
  type: 'batch',
  id: 7,
  requests: [
    {
      id: 'r1',
      body: Buffer.from('héllo'),
      contentType: undefined,
      headers: { 'x-a': '1' },
      tensors: {
        x: { type: 'float32', data: Float32Array.from([1.5, -2, 3.25]), dims: [1, 3] },
        ids: { type: 'int64', data: BigInt64Array.from([1n, -2n]), dims: [2] },
        b: { type: 'uint8', data: Uint8Array.from([0, 255, 7]), dims: [3] },
        s: { type: 'string', data: ['a', 'b'], dims: [2] },
      },
    },
  ],
};

function expectSame(got: unknown): void {
  const batch = got as typeof message;
  expect(batch.id).toBe(7);
  const [request] = batch.requests;
  expect(request!.contentType).toBeUndefined();
  expect(request!.headers).toEqual({ 'x-a': '1' });
  expect(Buffer.isBuffer(request!.body) && request!.body.toString()).toBe('héllo');
  const { x, ids, b, s } = request!.tensors;
  expect(x.data).toBeInstanceOf(Float32Array);
  expect([...x.data]).toEqual([1.5, -2, 3.25]);
  expect((x.data as Float32Array).byteOffset % 8).toBe(0); // a view in place, aligned
  expect([...ids.data]).toEqual([1n, -2n]);
  expect([...b.data]).toEqual([0, 255, 7]);
  expect(s.data).toEqual(['a', 'b']);
}

describe('binary frames', () => {
  test('a message with typed arrays of every kind comes back equal, whatever the chunk size', () => {
    const bytes = framed([message, { type: 'stop' }]);
    for (const size of [1, 3, 8, 64, bytes.length]) {
      const got: unknown[] = [];
      const reader = new FrameReader((m) => got.push(m));
      for (let at = 0; at < bytes.length; at += size) reader.push(bytes.subarray(at, at + size));
      expect(got).toHaveLength(2);
      expectSame(got[0]);
      expect(got[1]).toEqual({ type: 'stop' });
    }
  });

  test('reads straight into the frame (nextBuffer and commit), as the worker socket does', () => {
    const bytes = framed([message, { type: 'stop' }, message]);
    const got: unknown[] = [];
    const reader = new FrameReader((m) => got.push(m));
    let at = 0;
    while (at < bytes.length) {
      // A socket fills at most what nextBuffer() offers, and may stop short of it.
      const into = reader.nextBuffer();
      const n = Math.min(into.length, 5, bytes.length - at);
      bytes.copy(into, 0, at, at + n);
      reader.commit(n);
      at += n;
    }
    expect(got).toHaveLength(3);
    expectSame(got[0]);
    expectSame(got[2]);
  });
});
