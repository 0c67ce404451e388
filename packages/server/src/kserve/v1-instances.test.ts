import { expect, test } from 'vitest';
import { instanceBody, isBase64 } from './v1-instances.js';

const bytes = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x00, 0xff, 0xfe]);

test('{"data": base64} and {"b64": base64} become the decoded bytes; other instances their JSON', () => {
  expect(instanceBody({ data: bytes.toString('base64') }, 0)).toEqual({ body: bytes, contentType: 'application/octet-stream' });
  expect(instanceBody({ b64: bytes.toString('base64url') }, 0)).toEqual({ body: bytes, contentType: 'application/octet-stream' });
  // Text in "data" (TorchServe's text handlers read it as text), extra keys, other shapes: JSON as sent.
  for (const instance of [
    { data: 'hello world' },
    { data: '' },
    { data: bytes.toString('base64'), name: 'x' },
    { data: 3 },
    [1, 2],
    'b64',
    null,
  ]) {
    expect(instanceBody(instance, 0)).toEqual({ body: Buffer.from(JSON.stringify(instance)), contentType: 'application/json' });
  }
  expect(instanceBody({ b64: '' }, 0)).toEqual({ body: Buffer.alloc(0), contentType: 'application/octet-stream' });
});

test('a "b64" that is not a base64 string is a 400 naming the instance', () => {
  expect(() => instanceBody({ b64: 'abc$' }, 2)).toThrow(
    `instance 2: "b64" must be a base64 string (TF Serving's form for bytes), received "abc$"`,
  );
  expect(() => instanceBody({ b64: [1] }, 0)).toThrow(expect.objectContaining({ code: 'KILN_ERR_BAD_REQUEST', status: 400 }));
});

test('isBase64: padded or not, standard or URL-safe; never a length no encoder writes', () => {
  expect(['', 'QQ==', 'QQ', 'QUI=', 'QUJD', 'a-_b', '+/+/'].map(isBase64)).toEqual([true, true, true, true, true, true, true]);
  expect(['Q', 'QQ=', 'QUJDR', 'a b=', 'QQ==='].map(isBase64)).toEqual([false, false, false, false, false]);
});
