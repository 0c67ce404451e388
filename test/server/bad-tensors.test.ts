import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { runHandler } from '@kiln/handler-sdk/testing';
import { ElemType, echoModel } from '../support/onnx-models.js';
import { archiveModel, post, startKiln, type RunningKiln } from '../support/server.js';

// One model with an input of each kind the cases need, echoed back by Identity nodes.
const echo = echoModel([
  { name: 'bytes', elemType: ElemType.UINT8, dims: ['n', 3] },
  { name: 'small', elemType: ElemType.INT8, dims: ['n', 1] },
  { name: 'flag', elemType: ElemType.BOOL, dims: ['n', 1] },
]);

type Input = { name: string; shape: number[]; datatype: string; data: unknown[] };
const good: Record<string, Input> = {
  bytes: { name: 'bytes', shape: [1, 3], datatype: 'UINT8', data: [1, 2, 3] },
  small: { name: 'small', shape: [1, 1], datatype: 'INT8', data: [-3] },
  flag: { name: 'flag', shape: [1, 1], datatype: 'BOOL', data: [true] },
};
const inputsWith = (change: Partial<Record<string, Input | undefined>>) =>
  Object.values({ ...good, ...change }).filter((x): x is Input => x !== undefined);

// Each bad tensor, and the one answer every route must give it.
const cases: [string, Input[], string, string][] = [
  [
    'UINT8 256 is not wrapped to 0',
    inputsWith({ bytes: { ...good.bytes!, data: [1, 2, 256] } }),
    'KILN_ERR_BAD_REQUEST',
    'input "bytes" (UINT8): value 2 must be an integer within 0..255, received 256',
  ],
  [
    'INT8 200 is not wrapped to -56',
    inputsWith({ small: { ...good.small!, data: [200] } }),
    'KILN_ERR_BAD_REQUEST',
    'input "small" (INT8): value 0 must be an integer within -128..127, received 200',
  ],
  [
    'a fraction in an integer type',
    inputsWith({ bytes: { ...good.bytes!, data: [1, 2.5, 3] } }),
    'KILN_ERR_BAD_REQUEST',
    'input "bytes" (UINT8): value 1 must be an integer, received 2.5',
  ],
  [
    'a string in a BOOL',
    inputsWith({ flag: { ...good.flag!, data: ['yes'] } }),
    'KILN_ERR_BAD_REQUEST',
    'input "flag" (BOOL): value 0 must be true or false, received "yes"',
  ],
  [
    'fewer values than the shape holds',
    inputsWith({ bytes: { ...good.bytes!, data: [1, 2] } }),
    'KILN_ERR_BAD_REQUEST',
    'input "bytes" (UINT8) has 2 values, but its shape holds 3',
  ],
  [
    'the wrong datatype',
    inputsWith({ small: { ...good.small!, datatype: 'INT16' } }),
    'KILN_ERR_INPUT_MISMATCH',
    'input "small" must be INT8, received INT16',
  ],
  [
    'a datatype v2 does not have',
    inputsWith({ small: { ...good.small!, datatype: 'FLOAT' } }),
    'KILN_ERR_BAD_REQUEST',
    'input "small" has datatype "FLOAT"; use one of BOOL, UINT8, UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, FP16, FP32, FP64, BYTES',
  ],
  [
    'the wrong shape',
    inputsWith({ bytes: { ...good.bytes!, shape: [1, 2], data: [1, 2] } }),
    'KILN_ERR_INPUT_MISMATCH',
    'input "bytes" must have shape [-1, 3], received [1, 2] (dimension 1 is 2, expected 3)',
  ],
  [
    'an input the model does not have',
    [...inputsWith({}), { name: 'z', shape: [1], datatype: 'FP32', data: [1] }],
    'KILN_ERR_INPUT_MISMATCH',
    'unknown input "z"; the model\'s inputs are: bytes, small, flag',
  ],
  ['a missing input', inputsWith({ flag: undefined }), 'KILN_ERR_INPUT_MISMATCH', 'missing input "flag" (BOOL [-1, 1])'],
];

let kiln: RunningKiln;
let dir: string;
let mar: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kiln-bad-tensors-'));
  mar = archiveModel(dir, { name: 'echo', model: echo, handler: 'tensor', config: 'batchSize: 1\n' });
  kiln = await startKiln(['--models', `echo=${mar}`], { shared: true });
});
afterAll(async () => {
  await kiln?.stop('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

describe('the same bad tensor gets the same 400 on every route', () => {
  test('a good request is answered on every route', async () => {
    const body = { inputs: inputsWith({}) };
    expect((await post(`${kiln.inference}/v2/models/echo/infer`, body)).status).toBe(200);
    expect((await post(`${kiln.inference}/predictions/echo`, body)).status).toBe(200);
    expect((await post(`${kiln.inference}/v1/models/echo:predict`, { instances: [body] })).status).toBe(200);
    const [direct] = await runHandler(mar, [{ json: body }]);
    expect(direct!.ok).toBe(true);
  });

  test.each(cases)('%s', async (_what, inputs, code, message) => {
    const body = { inputs };
    const v2 = await post(`${kiln.inference}/v2/models/echo/infer`, body);
    expect({ status: v2.status, json: v2.json }).toEqual({ status: 400, json: { error: message, errorCode: code } });

    const torchServe = await post(`${kiln.inference}/predictions/echo`, body);
    expect({ status: torchServe.status, json: torchServe.json }).toEqual({
      status: 400,
      json: { code: 400, type: 'BadRequestException', message, errorCode: code },
    });

    const v1 = await post(`${kiln.inference}/v1/models/echo:predict`, { instances: [body] });
    expect({ status: v1.status, json: v1.json }).toEqual({ status: 400, json: { error: `instance 0: ${message}`, errorCode: code } });

    const [direct] = await runHandler(mar, [{ json: body }]);
    expect({ status: direct!.status, code: direct!.error?.code, message: direct!.error?.message }).toEqual({ status: 400, code, message });
  });
});
