import { expect, test } from 'vitest';
import { decodeClientTensor } from './decode.js';
import { toHalf } from './float16.js';

// Binary input is checked for NaN and ±Infinity before it reaches a model (unless the model's
// config sets allowNonFinite). The FP32 check sums four lanes at a time, so every position in
// the lanes and in the leftover tail is tried.

const bytesOf = (values: Float32Array | Float64Array | Uint16Array) => new Uint8Array(values.buffer, values.byteOffset, values.byteLength);

function decodeFloats(datatype: 'FP16' | 'FP32' | 'FP64', values: Float32Array | Float64Array | Uint16Array, allowNonFinite = false) {
  return decodeClientTensor({ name: 'x', datatype, shape: [values.length], bytes: bytesOf(values) }, undefined, { allowNonFinite });
}

test.each([NaN, Infinity, -Infinity])('FP32 %s is named at every position of lengths 1 to 9', (bad) => {
  for (let length = 1; length <= 9; length++) {
    for (let at = 0; at < length; at++) {
      const values = Float32Array.from({ length }, (_, i) => (i === at ? bad : i - 3.5));
      expect(() => decodeFloats('FP32', values), `length ${length}, at ${at}`).toThrow(`input "x" (FP32): value ${at} is ${bad};`);
    }
  }
});

test('FP32 extremes that are finite pass: the largest float, the smallest subnormal, -0', () => {
  const values = new Float32Array([3.4028234663852886e38, -3.4028234663852886e38, 1e-45, -0, 0, 1, 2, 3, 4]);
  expect(Array.from(decodeFloats('FP32', values).values as Float32Array)).toEqual(Array.from(values));
});

test('the first of several bad values is the one named', () => {
  const values = new Float32Array([1, 2, 3, 4, 5, Infinity, 7, NaN, -Infinity]);
  expect(() => decodeFloats('FP32', values)).toThrow('value 5 is Infinity');
});

test('FP64 and FP16 are checked too', () => {
  expect(() => decodeFloats('FP64', new Float64Array([0, 1, -Infinity]))).toThrow('input "x" (FP64): value 2 is -Infinity;');
  expect(() => decodeFloats('FP64', new Float64Array([1.7976931348623157e308, NaN]))).toThrow('value 1 is NaN;');
  expect(decodeFloats('FP64', new Float64Array([1.7976931348623157e308, -5e-324])).values).toEqual(
    new Float64Array([1.7976931348623157e308, -5e-324]),
  );
  expect(() => decodeFloats('FP16', new Uint16Array([toHalf(1), toHalf(65504), toHalf(Infinity)]))).toThrow(
    'input "x" (FP16): value 2 is Infinity;',
  );
  expect(() => decodeFloats('FP16', new Uint16Array([toHalf(NaN)]))).toThrow('value 0 is NaN;');
});

test('allowNonFinite lets every value through unchanged', () => {
  const values = new Float32Array([NaN, Infinity, -Infinity, 1]);
  expect(Array.from(decodeFloats('FP32', values, true).values as Float32Array)).toEqual([NaN, Infinity, -Infinity, 1]);
});
