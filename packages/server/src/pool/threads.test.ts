import { expect, test } from 'vitest';
import { defaultIntraOpThreads } from './threads.js';

test('the cores less one for the HTTP thread, divided among the workers, at least one each', () => {
  expect(defaultIntraOpThreads(1, 2)).toBe(1);
  expect(defaultIntraOpThreads(1, 8)).toBe(7);
  expect(defaultIntraOpThreads(2, 8)).toBe(3);
  expect(defaultIntraOpThreads(4, 8)).toBe(1);
  expect(defaultIntraOpThreads(16, 8)).toBe(1);
  expect(defaultIntraOpThreads(1, 1)).toBe(1);
});
