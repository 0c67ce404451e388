import { expect, test } from 'vitest';
import { fromHalf, toHalf } from './float16.js';
import { tensor, tensorValues } from './tensor.js';

test('FP16 tensors hold half-precision bits and read back as numbers', () => {
  const t = tensor('float16', [1.5, -2, 0.1, 65504, 1e-8], [5]);
  expect([...(t.data as Uint16Array)].slice(0, 2)).toEqual([0x3e00, 0xc000]);
  expect(tensorValues(t)).toEqual([1.5, -2, fromHalf(toHalf(0.1)), 65504, 0]);
  expect(fromHalf(toHalf(0.1))).toBeCloseTo(0.1, 3);
  expect(toHalf(1e6)).toBe(0x7c00); // overflow is infinity
});

test('values that do not fit the type are a 400 naming the value', () => {
  expect(() => tensor('int64', [1, 1.5], [2])).toThrow('a tensor of int64 with shape [2]: value 1 must be an integer, received 1.5');
  expect(() => tensor('float32', [1, 'a'], [2])).toThrow('a tensor of float32 with shape [2]: value 1 must be a number, received "a"');
  expect(() => tensor('float32', [1, 2, 3], [2, 2])).toThrow('a tensor of float32 with shape [2, 2] needs 4 values, received 3');
  expect(() => tensor('uint8', [255, 256], [2])).toThrow(
    'a tensor of uint8 with shape [2]: value 1 must be an integer within 0..255, received 256',
  );
  expect(() => tensor('int8', [200], [1])).toThrow(
    'a tensor of int8 with shape [1]: value 0 must be an integer within -128..127, received 200',
  );
  expect(tensorValues(tensor('bool', [true, false, 1], [3]))).toEqual([true, false, true]);
  expect([...(tensor('int64', [3, -4], [2]).data as BigInt64Array)]).toEqual([3n, -4n]);
});
