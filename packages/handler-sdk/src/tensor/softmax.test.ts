import { expect, test } from 'vitest';
import { argmax, softmax, topK } from './softmax.js';

test('softmax matches exp(x)/Σexp computed directly, and survives large logits', () => {
  const logits = [1, 2, 3, 0.5];
  const sum = logits.reduce((s, x) => s + Math.exp(x), 0);
  const expected = logits.map((x) => Math.exp(x) / sum);
  [...softmax(logits)].forEach((p, i) => expect(p).toBeCloseTo(expected[i]!, 6));
  const big = softmax([1000, 1001]);
  expect(big[1]).toBeCloseTo(1 / (1 + Math.exp(-1)), 6);
});

test('topK returns the largest values first with their indices; ties keep the lower index', () => {
  expect(topK([0.1, 0.5, 0.2, 0.5, 0.05], 3)).toEqual([
    { index: 1, value: 0.5 },
    { index: 3, value: 0.5 },
    { index: 2, value: 0.2 },
  ]);
  expect(topK([3, 1], 5)).toEqual([
    { index: 0, value: 3 },
    { index: 1, value: 1 },
  ]);
});

test('argmax over a window of a flat array', () => {
  expect(argmax([9, 1, 5, 7, 2], 1, 3)).toBe(2);
  expect(argmax([1, 3, 2])).toBe(1);
});
