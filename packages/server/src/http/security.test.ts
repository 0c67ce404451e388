import { expect, test } from 'vitest';
import { isLoopback, tokensMatch } from './security.js';

test('tokensMatch compares whole tokens of any length', () => {
  expect(tokensMatch('secret-token-0123456789', 'secret-token-0123456789')).toBe(true);
  expect(tokensMatch('secret-token-0123456788', 'secret-token-0123456789')).toBe(false);
  expect(tokensMatch('secret', 'secret-token-0123456789')).toBe(false);
  expect(tokensMatch('', 'secret-token-0123456789')).toBe(false);
});

test('loopback hosts', () => {
  for (const host of ['127.0.0.1', '127.1.2.3', '::1', 'localhost']) expect(isLoopback(host)).toBe(true);
  for (const host of ['0.0.0.0', '::', '10.0.0.5', 'example.com']) expect(isLoopback(host)).toBe(false);
});
