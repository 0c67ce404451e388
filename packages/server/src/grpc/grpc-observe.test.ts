import { describe, expect, test } from 'vitest';
import { peerHost } from './grpc-observe.js';

describe('peerHost', () => {
  test.each([
    ['127.0.0.1:50123', '127.0.0.1'],
    ['ipv4:10.0.3.7:443', '10.0.3.7'],
    ['[::1]:50123', '::1'],
    ['ipv6:[fe80::1]:7070', 'fe80::1'],
    ['unix:/tmp/kiln.sock', 'unix:/tmp/kiln.sock'],
  ])('%s → %s, as the HTTP access log writes an address', (peer, host) => {
    expect(peerHost(peer)).toBe(host);
  });
});
