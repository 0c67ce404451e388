import { describe, expect, test } from 'vitest';
import { tempDir } from '../support/kiln.js';
import { linearArchive, post, startKiln } from '../support/server.js';

const part = '--XYZ\r\nContent-Disposition: form-data; name="data"; filename="row.json"\r\nContent-Type: application/json\r\n\r\n';

describe('a broken multipart body is the client’s mistake: 400, never 500', () => {
  test.each([
    [
      'no boundary in its Content-Type',
      'multipart/form-data',
      `${part}{"row":[1,2,3,4]}\r\n--XYZ--\r\n`,
      'the multipart body could not be read',
    ],
    ['a form cut short', 'multipart/form-data; boundary=XYZ', `${part}{"row":[1,2`, 'the multipart body could not be read'],
    [
      '17 files, one more than a request may carry',
      'multipart/form-data; boundary=XYZ',
      `${Array.from({ length: 17 }, (_, i) => part.replace('row.json', `row${i}.json`) + '{"row":[1,2,3,4]}\r\n').join('')}--XYZ--\r\n`,
      'reach files limit',
    ],
  ])('%s: 400 KILN_ERR_BAD_REQUEST naming the problem, and the server still serves', async (_, contentType, body, problem) => {
    const archive = linearArchive(tempDir(), 'linear', 'batchSize: 1\n');
    const server = await startKiln(['--models', `linear=${archive}`]);
    const response = await fetch(`${server.inference}/predictions/linear`, {
      method: 'POST',
      headers: { 'content-type': contentType },
      body,
    });
    const answer = (await response.json()) as { errorCode: string; message: string };
    expect(response.status).toBe(400);
    expect(answer.errorCode).toBe('KILN_ERR_BAD_REQUEST');
    expect(answer.message).toContain(problem);
    expect(server.output()).not.toContain('KILN_ERR_INTERNAL');
    expect((await post(`${server.inference}/predictions/linear`, { row: [1, 2, 3, 4] })).status).toBe(200);
  });
});
