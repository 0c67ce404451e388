import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { kiln as runKiln } from '../support/kiln.js';
import { ElemType, echoModel, linearExpected, linearModel, writeModel } from '../support/onnx-models.js';
import { linearArchive, post, startKiln, type RunningKiln } from '../support/server.js';

const y = (row: number[]) => linearExpected(row).map(Math.fround);

/** POSTs `body` with chunked transfer encoding (no Content-Length), 64 KiB at a time. */
function chunkedPost(url: string, body: Buffer): Promise<{ status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(url, { method: 'POST', headers: { 'content-type': 'application/json' } }, (response) => {
      let text = '';
      response.on('data', (chunk) => (text += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, json: JSON.parse(text) }));
    });
    request.on('error', reject);
    for (let at = 0; at < body.length; at += 65_536) request.write(body.subarray(at, at + 65_536));
    request.end();
  });
}

/** The linear model with the tensor handler, and a model that echoes one input of each datatype. */
async function serveModels(dir: string): Promise<RunningKiln> {
  writeModel(dir, 'linear.onnx', linearModel());
  writeModel(
    dir,
    'echo.onnx',
    echoModel([
      { name: 'i64', elemType: ElemType.INT64, dims: ['n', 2] },
      { name: 'flag', elemType: ElemType.BOOL, dims: ['n', 2] },
      { name: 'text', elemType: ElemType.STRING, dims: ['n', 1] },
      { name: 'half', elemType: ElemType.FLOAT16, dims: ['n', 2] },
      { name: 'bytes', elemType: ElemType.UINT8, dims: ['n', 3] },
    ]),
  );
  linearArchive(dir, 'linear', 'batchSize: 16\nmaxBatchDelay: 200\n', 'mixed');
  linearArchive(dir, 'json-always', 'batchSize: 1\n', 'jsonly');
  for (const name of ['linear', 'echo']) {
    const run = runKiln(
      ['archive', '--model-name', name, '-v', '1', '--serialized-file', `${name}.onnx`, '--handler', 'tensor', '--export-path', 'store'],
      { cwd: dir },
    );
    expect(run.status).toBe(0);
  }
  return startKiln(
    [
      '--models',
      `linear=${join(dir, 'store/linear.mar')}`,
      `echo=${join(dir, 'store/echo.mar')}`,
      `mixed=${join(dir, 'store/mixed.mar')}`,
      `jsonly=${join(dir, 'store/jsonly.mar')}`,
    ],
    { shared: true },
  );
}

// One server for the whole file: these tests only read from it.
let kiln: RunningKiln;
let dir: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kiln-kserve-'));
  kiln = await serveModels(dir);
});
afterAll(async () => {
  await kiln?.stop('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

describe('KServe v2', () => {
  test("Triton's repository index (GET /v2/models) and model configuration (/v2/models/{m}/config)", async () => {
    const get = async (path: string) => {
      const response = await fetch(`${kiln.inference}${path}`);
      return { status: response.status, json: (await response.json()) as unknown };
    };
    const index = (await get('/v2/models')).json as { name: string; version: string; state: string }[];
    expect(index.map((m) => `${m.name} ${m.version} ${m.state}`).sort()).toEqual([
      'echo 1 READY',
      'jsonly 1.0 READY',
      'linear 1 READY',
      'mixed 1.0 READY',
    ]);
    expect(await get('/v2/models/mixed/config')).toEqual({
      status: 200,
      json: {
        name: 'mixed',
        platform: 'onnxruntime_onnx',
        backend: 'onnxruntime',
        max_batch_size: 16,
        input: [{ name: 'x', data_type: 'TYPE_FP32', dims: [4] }],
        output: [{ name: 'y', data_type: 'TYPE_FP32', dims: [3] }],
        dynamic_batching: { max_queue_delay_microseconds: 200_000 },
        instance_group: [{ name: 'mixed', kind: 'KIND_CPU', count: 1 }],
        parameters: { execution_providers: { string_value: 'cpu' } },
      },
    });
    const echo = (await get('/v2/models/echo/versions/1/config')).json as {
      input: { data_type: string }[];
      output: { name: string; data_type: string; dims: number[] }[];
    };
    expect(echo.output.find((o) => o.name === 'text_out')).toEqual({ name: 'text_out', data_type: 'TYPE_STRING', dims: [1] });
    expect(echo.input.map((i) => i.data_type)).toEqual(['TYPE_INT64', 'TYPE_BOOL', 'TYPE_STRING', 'TYPE_FP16', 'TYPE_UINT8']);
    expect(await get('/v2/models/nope/config')).toMatchObject({ status: 404, json: { errorCode: 'KILN_ERR_MODEL_NOT_FOUND' } });
  });

  test('server and model metadata, health and readiness', async () => {
    const get = async (path: string) => {
      const response = await fetch(`${kiln.inference}${path}`);
      return { status: response.status, json: await response.json() };
    };
    expect(await get('/v2')).toEqual({
      status: 200,
      json: { name: 'kiln', version: expect.any(String), extensions: ['binary_tensor_data', 'statistics'] },
    });
    expect(await get('/v2/health/live')).toEqual({ status: 200, json: { live: true } });
    expect(await get('/v2/health/ready')).toEqual({ status: 200, json: { ready: true } });
    expect(await get('/v2/models/linear')).toEqual({
      status: 200,
      json: {
        name: 'linear',
        versions: ['1'],
        platform: 'onnxruntime_onnx',
        inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 4] }],
        outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 3] }],
      },
    });
    expect((await get('/v2/models/linear/versions/1')).json).toMatchObject({ name: 'linear' });
    expect(await get('/v2/models/linear/ready')).toEqual({ status: 200, json: { name: 'linear', ready: true } });
    // Triton's wording, which its clients and tests look for.
    expect(await get('/v2/models/nope')).toMatchObject({
      status: 404,
      json: {
        error: expect.stringMatching(/^Request for unknown model: 'nope' is not found; registered models: /),
        errorCode: 'KILN_ERR_MODEL_NOT_FOUND',
      },
    });
    expect(await get('/v2/models/linear/versions/7/ready')).toMatchObject({
      status: 404,
      json: { error: "Request for unknown model: 'linear' version 7 is not found; versions: 1", errorCode: 'KILN_ERR_VERSION_NOT_FOUND' },
    });
    expect((await get('/v2/models/nope/stats')).json).toMatchObject({
      error: expect.stringContaining("Request for unknown model: 'nope'"),
    });
  });

  test('JSON infer: nested or flat data, id echoed, outputs computed by the model', async () => {
    const rows = [
      [1, 2, 3, 4],
      [-1, 0, 0.5, 2],
    ];
    const nested = await post(`${kiln.inference}/v2/models/linear/infer`, {
      id: 'req-1',
      inputs: [{ name: 'x', shape: [2, 4], datatype: 'FP32', data: rows }],
    });
    expect(nested.status).toBe(200);
    expect(nested.json).toEqual({
      model_name: 'linear',
      model_version: '1',
      id: 'req-1',
      outputs: [{ name: 'y', datatype: 'FP32', shape: [2, 3], data: [...y(rows[0]!), ...y(rows[1]!)] }],
    });
    const flat = await post(`${kiln.inference}/v2/models/linear/versions/1/infer`, {
      inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: rows[0] }],
      outputs: [{ name: 'y' }],
    });
    expect(flat.json.outputs).toEqual([{ name: 'y', datatype: 'FP32', shape: [1, 3], data: y(rows[0]!) }]);
    expect(flat.json.id).toBeUndefined();
  });

  test('every datatype but BF16 round-trips through JSON', async () => {
    const answer = await post(`${kiln.inference}/v2/models/echo/infer`, {
      inputs: [
        { name: 'i64', shape: [1, 2], datatype: 'INT64', data: [-5, 9007199254740991] },
        { name: 'flag', shape: [1, 2], datatype: 'BOOL', data: [true, false] },
        { name: 'text', shape: [1, 1], datatype: 'BYTES', data: ['héllo'] },
        { name: 'half', shape: [1, 2], datatype: 'FP16', data: [1.5, -0.25] },
        { name: 'bytes', shape: [1, 3], datatype: 'UINT8', data: [0, 128, 255] },
      ],
    });
    expect(answer.status).toBe(200);
    const outputs = Object.fromEntries((answer.json.outputs as { name: string; data: unknown }[]).map((o) => [o.name, o.data]));
    expect(outputs).toEqual({
      i64_out: [-5, 9007199254740991],
      flag_out: [true, false],
      text_out: ['héllo'],
      half_out: [1.5, -0.25],
      bytes_out: [0, 128, 255],
    });
  });

  test.each([
    [
      { inputs: [{ name: 'z', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] },
      400,
      'unknown input "z"; the model\'s inputs are: x',
    ],
    [{ inputs: [{ name: 'x', shape: [1, 4], datatype: 'INT32', data: [1, 2, 3, 4] }] }, 400, 'input "x" must be FP32, received INT32'],
    [
      { inputs: [{ name: 'x', shape: [1, 1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] },
      400,
      'input "x" must have shape [-1, 4] (rank 2), received [1, 1, 4]',
    ],
    [
      { inputs: [{ name: 'x', shape: [1, 5], datatype: 'FP32', data: [1, 2, 3, 4, 5] }] },
      400,
      'input "x" must have shape [-1, 4], received [1, 5] (dimension 1 is 5, expected 4)',
    ],
    [
      { inputs: [{ name: 'x', shape: [2, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] },
      400,
      'input "x" (FP32) has 4 values, but its shape holds 8',
    ],
    [
      { inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: [1, 2, 'a', 4] }] },
      400,
      'input "x" (FP32): value 2 must be a number, received "a"',
    ],
    [{ inputs: [] }, 400, 'the request needs "inputs"'],
    [
      { inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }], outputs: [{ name: 'w' }] },
      400,
      'unknown output "w"; the model\'s outputs are: y',
    ],
  ])('input %# is checked before the model runs: %s', async (body, status, message) => {
    const answer = await post(`${kiln.inference}/v2/models/linear/infer`, body);
    expect(answer.status).toBe(status);
    expect(answer.json.error).toContain(message);
    expect(Object.keys(answer.json)).toEqual(['error', 'errorCode']);
  });

  test('integer values must fit their datatype', async () => {
    const answer = await post(`${kiln.inference}/v2/models/echo/infer`, {
      inputs: [
        { name: 'i64', shape: [1, 2], datatype: 'INT64', data: [1, 2] },
        { name: 'flag', shape: [1, 2], datatype: 'BOOL', data: [true, true] },
        { name: 'text', shape: [1, 1], datatype: 'BYTES', data: ['x'] },
        { name: 'half', shape: [1, 2], datatype: 'FP16', data: [1, 2] },
        { name: 'bytes', shape: [1, 3], datatype: 'UINT8', data: [1, 2, 256] },
      ],
    });
    expect(answer.status).toBe(400);
    expect(answer.json.error).toBe('input "bytes" (UINT8): value 2 must be an integer within 0..255, received 256');
  });

  test('errors under /v2 keep the v2 shape: unknown routes and oversized bodies too', async () => {
    const route = await fetch(`${kiln.inference}/v2/models/linear/explain`, { method: 'POST', body: '{}' });
    expect(route.status).toBe(404);
    expect(Object.keys((await route.json()) as object)).toEqual(['error', 'errorCode']);
    // Larger than maxRequestSize (the default, 6553500 bytes), sent chunked so the server reads until it is over.
    const oversized = await chunkedPost(`${kiln.inference}/v2/models/linear/infer`, Buffer.alloc(6_553_501, 32));
    expect(oversized).toEqual({
      status: 413,
      json: {
        error: 'the request body is larger than maxRequestSize (6553500 bytes); send a smaller body or raise --max-request-size',
        errorCode: 'KILN_ERR_REQUEST_TOO_LARGE',
      },
    });
  });

  test('a handler that answers a v2 request with JSON is named as the mistake: 500 KILN_ERR_HANDLER_FAILED', async () => {
    const answer = await post(`${kiln.inference}/v2/models/jsonly/infer`, {
      inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }],
    });
    expect(answer.status).toBe(500);
    expect(answer.json).toEqual({
      error:
        'the handler of model "jsonly" answered a v2 request with JSON: a v2 request must be answered with named tensors (return the model\'s outputs from postprocessTensors)',
      errorCode: 'KILN_ERR_HANDLER_FAILED',
    });
  });

  test('a missing input is named with what it must be', async () => {
    const answer = await post(`${kiln.inference}/v2/models/echo/infer`, {
      inputs: [{ name: 'i64', shape: [1, 2], datatype: 'INT64', data: [1, 2] }],
    });
    expect(answer.status).toBe(400);
    expect(answer.json.error).toBe('missing input "flag" (BOOL [-1, 2])');
  });

  test('binary tensor extension: a request built byte by byte, the response parsed the way Triton clients do', async () => {
    const rows = [3, 1, 4, 1, 5, 9, 2, 6];
    const tensor = Buffer.from(new Float32Array(rows).buffer);
    const header = Buffer.from(
      JSON.stringify({
        inputs: [{ name: 'x', shape: [2, 4], datatype: 'FP32', parameters: { binary_data_size: tensor.length } }],
        outputs: [{ name: 'y', parameters: { binary_data: true } }],
      }),
    );
    const response = await fetch(`${kiln.inference}/v2/models/linear/infer`, {
      method: 'POST',
      body: Buffer.concat([header, tensor]),
      headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) },
    });
    expect(response.status).toBe(200);
    const body = Buffer.from(await response.arrayBuffer());
    const jsonLength = Number(response.headers.get('inference-header-content-length'));
    const meta = JSON.parse(body.subarray(0, jsonLength).toString());
    expect(meta).toEqual({
      model_name: 'linear',
      model_version: '1',
      outputs: [{ name: 'y', datatype: 'FP32', shape: [2, 3], parameters: { binary_data_size: 24 } }],
    });
    const raw = body.subarray(jsonLength, jsonLength + 24);
    const values = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
    expect([...values]).toEqual([...y(rows.slice(0, 4)), ...y(rows.slice(4))]);
    expect(body.length).toBe(jsonLength + 24);

    // binary_data_output for all outputs, BYTES and BOOL binary layouts.
    const text = Buffer.concat([Buffer.from([5, 0, 0, 0]), Buffer.from('kiln!')]);
    const json = Buffer.from(
      JSON.stringify({
        inputs: [
          { name: 'i64', shape: [1, 2], datatype: 'INT64', data: [7, 8] },
          { name: 'flag', shape: [1, 2], datatype: 'BOOL', parameters: { binary_data_size: 2 } },
          { name: 'text', shape: [1, 1], datatype: 'BYTES', parameters: { binary_data_size: text.length } },
          { name: 'half', shape: [1, 2], datatype: 'FP16', data: [2, 0.5] },
          { name: 'bytes', shape: [1, 3], datatype: 'UINT8', data: [1, 2, 3] },
        ],
        parameters: { binary_data_output: true },
      }),
    );
    const second = await fetch(`${kiln.inference}/v2/models/echo/infer`, {
      method: 'POST',
      body: Buffer.concat([json, Buffer.from([1, 0]), text]),
      headers: { 'inference-header-content-length': String(json.length) },
    });
    const bytes = Buffer.from(await second.arrayBuffer());
    const n = Number(second.headers.get('inference-header-content-length'));
    const outputs = JSON.parse(bytes.subarray(0, n).toString()).outputs as { name: string; parameters: { binary_data_size: number } }[];
    let at = n;
    const parts: Record<string, Buffer> = {};
    for (const o of outputs) {
      parts[o.name] = bytes.subarray(at, at + o.parameters.binary_data_size);
      at += o.parameters.binary_data_size;
    }
    expect(parts.i64_out!.readBigInt64LE(0)).toBe(7n);
    expect([...parts.flag_out!]).toEqual([1, 0]);
    expect(parts.text_out!.equals(text)).toBe(true);
    expect([parts.half_out!.readUInt16LE(0), parts.half_out!.readUInt16LE(2)]).toEqual([0x4000, 0x3800]);
    expect([...parts.bytes_out!]).toEqual([1, 2, 3]);
  });

  test('a binary body that does not add up is refused before the model runs', async () => {
    const header = Buffer.from(
      JSON.stringify({ inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', parameters: { binary_data_size: 12 } }] }),
    );
    const answer = await post(`${kiln.inference}/v2/models/linear/infer`, Buffer.concat([header, Buffer.alloc(12)]), {
      'inference-header-content-length': String(header.length),
    });
    expect(answer.status).toBe(400);
    expect(answer.json.error).toBe('input "x" (FP32) has 12 bytes, but its shape needs 16 (4 × 4)');
  });

  test('v2 and TorchServe requests join the same batches', async () => {
    // 8 of each kind within the 200 ms window of a batchSize 16 model: a batch above 8 mixes both.
    const v2 = Array.from({ length: 8 }, (_, i) =>
      post(`${kiln.inference}/v2/models/mixed/infer`, { inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: [i, 0, 0, 0] }] }),
    );
    const ts = Array.from({ length: 8 }, (_, i) => post(`${kiln.inference}/predictions/mixed`, { row: [0, i, 0, 0] }));
    const answers = await Promise.all([...v2, ...ts]);
    const v2Batches = answers.slice(0, 8).map((a, i) => {
      const outputs = a.json.outputs as { name: string; data: number[] }[];
      expect(outputs.find((o) => o.name === 'y')!.data).toEqual(y([i, 0, 0, 0]));
      return outputs.find((o) => o.name === 'batch')!.data[0]!;
    });
    const tsBatches = answers.slice(8).map((a, i) => {
      expect(a.json.y).toEqual(y([0, i, 0, 0]));
      return a.json.batch as number;
    });
    expect(Math.max(...v2Batches)).toBeGreaterThan(8);
    expect(Math.max(...tsBatches)).toBeGreaterThan(8);
  });
});

describe('KServe v1', () => {
  test('readiness, and instances → predictions, each instance one request', async () => {
    expect(await (await fetch(`${kiln.inference}/v1/models/linear`)).json()).toEqual({ name: 'linear', ready: true });
    expect(await (await fetch(`${kiln.inference}/v1/models`)).json()).toEqual({ models: ['echo', 'jsonly', 'linear', 'mixed'] });
    const instance = (row: number[]) => ({ inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: row }] });
    const answer = await post(`${kiln.inference}/v1/models/linear:predict`, {
      instances: [instance([1, 2, 3, 4]), instance([4, 3, 2, 1])],
    });
    expect(answer.status).toBe(200);
    expect(answer.json).toEqual({
      predictions: [
        { outputs: [{ name: 'y', datatype: 'FP32', shape: [1, 3], data: y([1, 2, 3, 4]) }] },
        { outputs: [{ name: 'y', datatype: 'FP32', shape: [1, 3], data: y([4, 3, 2, 1]) }] },
      ],
    });
    const bad = await post(`${kiln.inference}/v1/models/linear:predict`, { rows: [] });
    expect(bad.status).toBe(400);
    expect(bad.json.error).toBe('expected a JSON body {"instances": [...]}');
    expect((await post(`${kiln.inference}/v1/models/nope:predict`, { instances: [] })).status).toBe(404);
  });
});
