import { describe, expect, test } from 'vitest';
import type { WireRequest, WireResult } from '@kiln/handler-sdk/runtime';
import { LentBuffers } from './lent-buffers.js';
import { returnedBuffers } from './protocol.js';

describe('LentBuffers', () => {
  test('a buffer given back is taken again for a body of the same size class, rounded up to 4 KiB', () => {
    const pool = new LentBuffers(1 << 20, 4);
    const first = pool.take(5000);
    expect(first.byteLength).toBe(8192);
    pool.give(first);
    expect(pool.heldBytes).toBe(8192);
    expect(pool.take(8000)).toBe(first);
    expect(pool.heldBytes).toBe(0);
    // Another size class gets a new buffer.
    pool.give(first);
    expect(pool.take(9000)).not.toBe(first);
  });

  test('keeps no more than its byte limit, its count per size, or buffers it did not size', () => {
    const pool = new LentBuffers(4 * 4096, 2);
    const buffers = [pool.take(1), pool.take(1), pool.take(1)];
    for (const b of buffers) pool.give(b);
    expect(pool.heldBytes).toBe(2 * 4096); // 2 per size
    pool.give(new ArrayBuffer(4096 * 2));
    expect(pool.heldBytes).toBe(4 * 4096); // up to the byte limit
    pool.give(new ArrayBuffer(4096 * 3));
    expect(pool.heldBytes).toBe(4 * 4096);
    pool.give(new ArrayBuffer(100)); // not a size class
    pool.give(new ArrayBuffer(0));
    expect(pool.heldBytes).toBe(4 * 4096);
  });
});

describe('returnedBuffers', () => {
  const request = (data: Float32Array): WireRequest => ({
    id: 'r',
    body: new Uint8Array(),
    contentType: undefined,
    headers: {},
    query: {},
    tensors: { x: { type: 'float32', data, dims: [data.length] } },
  });
  const answer = (data: Float32Array): WireResult => ({
    ok: true,
    status: 200,
    headers: {},
    body: { kind: 'tensors', outputs: [{ name: 'y', datatype: 'FP32', shape: [data.length], data }] },
  });

  test('gives back every request buffer but those an answer points into', () => {
    const a = new Float32Array(4);
    const b = new Float32Array(4);
    const echoed = new Float32Array(b.buffer, 4, 2);
    const returned = returnedBuffers([request(a), request(b)], [answer(new Float32Array(2)), answer(echoed)]);
    expect(returned).toEqual([a.buffer]);
  });
});
