import { expect, test } from 'vitest';
import { tempDir } from '../support/kiln.js';
import { linearArchive, post, startKiln } from '../support/server.js';

// What a handler returns decides what the client gets, as in TorchServe: a string is text, bytes
// are bytes; only other values are JSON.

test('a string answer is text/plain as it is, bytes are application/octet-stream; v1 carries the text as a JSON string', async () => {
  const kiln = await startKiln(['--models', `text=${linearArchive(tempDir(), 'text-answer', 'batchSize: 1\n', 'text')}`]);

  const text = await post(`${kiln.inference}/predictions/text`, { row: [1, 2, 3, 4] });
  expect(text.status).toBe(200);
  expect(text.headers.get('content-type')).toBe('text/plain; charset=utf-8');
  expect(text.text).toBe('ok:1,2,3,4'); // not "\"ok:1,2,3,4\""

  const bytes = await fetch(`${kiln.inference}/predictions/text`, {
    method: 'POST',
    body: JSON.stringify({ row: [7] }),
    headers: { 'content-type': 'application/json' },
  });
  expect(bytes.headers.get('content-type')).toBe('application/octet-stream');
  expect([...new Uint8Array(await bytes.arrayBuffer())]).toEqual([1, 2, 3]);

  const v1 = await post(`${kiln.inference}/v1/models/text:predict`, { instances: [{ row: [5, 6] }, { row: [7] }] });
  expect(v1.json).toEqual({ predictions: ['ok:5,6', 'AQID'] }); // text as a string, bytes as base64
  await kiln.stop();
});
