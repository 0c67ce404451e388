import { Tensor } from 'onnxruntime-node';
import { describe, expect, test } from 'vitest';
import type { Signature } from '../manifest/manifest.js';
import { collate, conformToSignature, split } from './collate.js';

const f32 = (values: number[], dims: number[]) => new Tensor('float32', Float32Array.from(values), dims);
const SIGNATURE: Signature = {
  inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 2] }],
  outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 2] }],
};

describe('conformToSignature', () => {
  test('adds the batch dimension to a single row and counts rows', () => {
    const one = conformToSignature({ x: f32([1, 2], [2]) }, SIGNATURE);
    expect(one.tensors.x!.dims).toEqual([1, 2]);
    expect(one.rows).toBe(1);
    expect(conformToSignature({ x: f32([1, 2, 3, 4, 5, 6], [3, 2]) }, SIGNATURE).rows).toBe(3);
  });

  test.each([
    [{ y: f32([1, 2], [1, 2]) }, 'unknown input "y"; the model\'s inputs are: x'],
    [{}, 'missing input "x" (FP32 [-1, 2])'],
    [{ x: new Tensor('int32', Int32Array.from([1, 2]), [1, 2]) }, 'input "x" must be FP32, received INT32'],
    [{ x: f32([1, 2, 3], [1, 3]) }, 'input "x" must have shape [-1, 2], received [1, 3] (dimension 1 is 3, expected 2)'],
    [{ x: f32([1, 2], [1, 1, 2]) }, 'input "x" must have shape [-1, 2] (rank 2), received [1, 1, 2]'],
  ])('refuses %j with a message naming the input', (inputs, message) => {
    expect(() => conformToSignature(inputs as Record<string, Tensor>, SIGNATURE)).toThrow(message);
  });

  test('inputs must agree on the number of rows', () => {
    const two: Signature = {
      inputs: [
        { name: 'a', datatype: 'FP32', shape: [-1] },
        { name: 'b', datatype: 'FP32', shape: [-1] },
      ],
      outputs: [],
    };
    expect(() => conformToSignature({ a: f32([1, 2], [2]), b: f32([1, 2, 3], [3]) }, two)).toThrow(
      'inputs disagree on the batch dimension',
    );
  });
});

describe('collate and split', () => {
  test('stack along dimension 0 and slice back, each request getting its own rows', () => {
    const requests = [{ x: f32([1, 2], [1, 2]) }, { x: f32([3, 4, 5, 6], [2, 2]) }, { x: f32([7, 8], [1, 2]) }];
    const batch = collate(requests);
    expect(batch.x!.dims).toEqual([4, 2]);
    expect([...(batch.x!.data as Float32Array)]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);

    // Pretend the model doubled every value, and added an output without a batch dimension.
    const outputs = { y: f32([2, 4, 6, 8, 10, 12, 14, 16], [4, 2]), meta: f32([42], [1]) };
    const parts = split(outputs, [1, 2, 1]);
    expect(parts.map((p) => [...(p.y!.data as Float32Array)])).toEqual([
      [2, 4],
      [6, 8, 10, 12],
      [14, 16],
    ]);
    expect(parts.map((p) => p.y!.dims)).toEqual([
      [1, 2],
      [2, 2],
      [1, 2],
    ]);
    expect(parts.every((p) => p.meta === outputs.meta)).toBe(true);
    // Slices are views of the batch output, not copies.
    expect((parts[1]!.y!.data as Float32Array).buffer).toBe((outputs.y.data as Float32Array).buffer);
  });

  test('one request passes through without a copy', () => {
    const only = { x: f32([1, 2], [1, 2]) };
    expect(collate([only])).toBe(only);
  });

  test('mixed shapes fail with a message naming both requests', () => {
    expect(() => collate([{ x: f32([1, 2], [1, 2]) }, { x: f32([1, 2, 3], [1, 3]) }])).toThrow(
      'cannot batch input "x": request 0 has float32 [1, 2], request 1 has float32 [1, 3]; only dimension 0 may differ',
    );
    expect(() => collate([{ x: f32([1, 2], [1, 2]) }, { x: new Tensor('int32', Int32Array.from([1, 2]), [1, 2]) }])).toThrow(
      'request 1 has int32 [1, 2]',
    );
    expect(() => collate([{ x: f32([1, 2], [1, 2]) }, {}])).toThrow('request 1 has no input "x"');
  });

  test('int64 and string tensors stack too', () => {
    const batch = collate([
      { ids: new Tensor('int64', BigInt64Array.from([1n, 2n]), [1, 2]), s: new Tensor('string', ['a'], [1]) },
      { ids: new Tensor('int64', BigInt64Array.from([3n, 4n]), [1, 2]), s: new Tensor('string', ['b'], [1]) },
    ]);
    expect([...(batch.ids!.data as BigInt64Array)]).toEqual([1n, 2n, 3n, 4n]);
    expect(batch.s!.data).toEqual(['a', 'b']);
    expect(split({ s: batch.s! }, [1, 1]).map((p) => p.s!.data)).toEqual([['a'], ['b']]);
  });
});

test('collate with scratch stacks into one kept buffer, batch after batch, growing it when needed', () => {
  const scratch = new Map<string, ArrayBuffer>();
  const row = (v: number) => ({ x: new Tensor('float32', Float32Array.from([v, v + 0.5]), [1, 2]) });
  const first = collate([row(1), row(2)], scratch);
  expect([...(first.x!.data as Float32Array)]).toEqual([1, 1.5, 2, 2.5]);
  const buffer = scratch.get('x');
  expect(buffer?.byteLength).toBe(16);
  const second = collate([row(3), row(4)], scratch);
  expect([...(second.x!.data as Float32Array)]).toEqual([3, 3.5, 4, 4.5]);
  expect((second.x!.data as Float32Array).buffer).toBe(buffer); // the same memory, no allocation
  const bigger = collate([row(5), row(6), row(7)], scratch);
  expect([...(bigger.x!.data as Float32Array)]).toEqual([5, 5.5, 6, 6.5, 7, 7.5]);
  expect(scratch.get('x')?.byteLength).toBe(24);
  const smaller = collate([row(8), row(9)], scratch);
  expect(smaller.x!.dims).toEqual([2, 2]);
  expect([...(smaller.x!.data as Float32Array)]).toEqual([8, 8.5, 9, 9.5]); // a view of the first rows only
});
