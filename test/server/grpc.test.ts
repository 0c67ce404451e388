import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { grpcClient, KSERVE_SERVICE, type InferResponse } from '../support/grpc-client.js';
import { kiln as runKiln } from '../support/kiln.js';
import { ElemType, echoModel, linearExpected, linearModel, writeModel } from '../support/onnx-models.js';
import { linearArchive, post, startKiln, type RunningKiln } from '../support/server.js';

/*
 * The KServe v2 gRPC API of a real `kiln serve`, called by a grpc-js client built from the same
 * .proto the server ships (packages/server/proto/grpc_service.proto).
 */

const service = KSERVE_SERVICE();

const y = (row: number[]) => linearExpected(row).map(Math.fround);

const connect = (address: string) => grpcClient(address, service);

const floats = (values: number[]) => Buffer.from(new Float32Array(values).buffer);
const readFloats = (bytes: Buffer) => [...new Float32Array(Uint8Array.from(bytes).buffer)];

let kiln: RunningKiln;
let dir: string;
let grpc: ReturnType<typeof connect>;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kiln-grpc-'));
  writeModel(dir, 'linear.onnx', linearModel());
  writeModel(
    dir,
    'echo.onnx',
    echoModel([
      { name: 'i64', elemType: ElemType.INT64, dims: ['n', 2] },
      { name: 'flag', elemType: ElemType.BOOL, dims: ['n', 2] },
      { name: 'text', elemType: ElemType.STRING, dims: ['n', 1] },
      { name: 'bytes', elemType: ElemType.UINT8, dims: ['n', 3] },
    ]),
  );
  for (const name of ['linear', 'echo']) {
    const run = runKiln(
      ['archive', '--model-name', name, '-v', '1', '--serialized-file', `${name}.onnx`, '--handler', 'tensor', '--export-path', 'store'],
      { cwd: dir },
    );
    expect(run.status).toBe(0);
  }
  // Two requests make a batch; one alone would wait 10 s for a second.
  linearArchive(dir, 'linear', 'batchSize: 2\nmaxBatchDelay: 10000\n', 'pair');
  // 200 ms a batch, one at a time, one more waiting: a third at once finds the queue full.
  linearArchive(dir, 'slow-inference', 'batchSize: 1\njobQueueSize: 1\nminWorkers: 1\nmaxWorkers: 1\n', 'slow');
  kiln = await startKiln(
    ['--model-store', join(dir, 'store'), '--models', 'linear=linear.mar', 'echo=echo.mar', 'pair=pair.mar', 'slow=slow.mar'],
    {
      shared: true,
    },
  );
  grpc = connect(kiln.grpc!);
});
afterAll(async () => {
  grpc?.close();
  await kiln?.stop('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

describe('KServe v2 over gRPC', () => {
  test('listens where it says, on a port of its own', () => {
    expect(kiln.grpc).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(kiln.output()).toMatch(/grpc API listening on 127\.0\.0\.1:\d+/);
  });

  test('ServerLive, ServerReady, ServerMetadata, ModelReady, ModelMetadata', async () => {
    expect(await grpc.call('ServerLive', {})).toEqual({ ok: true, response: { live: true } });
    expect(await grpc.call('ServerReady', {})).toEqual({ ok: true, response: { ready: true } });
    expect(await grpc.call('ServerMetadata', {})).toEqual({
      ok: true,
      response: { name: 'kiln', version: expect.any(String), extensions: ['binary_tensor_data', 'statistics'] },
    });
    expect(await grpc.call('ModelReady', { name: 'linear' })).toEqual({ ok: true, response: { ready: true } });
    expect(await grpc.call('ModelReady', { name: 'linear', version: '1' })).toEqual({ ok: true, response: { ready: true } });
    expect(await grpc.call('ModelMetadata', { name: 'linear' })).toEqual({
      ok: true,
      response: {
        name: 'linear',
        versions: ['1'],
        platform: 'onnxruntime_onnx',
        inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 4] }],
        outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 3] }],
      },
    });
    // The same answer as the HTTP route's.
    const http = (await (await fetch(`${kiln.inference}/v2/models/echo`)).json()) as object;
    const metadata = await grpc.call<object>('ModelMetadata', { name: 'echo', version: '1' });
    expect(metadata).toEqual({ ok: true, response: http });
  });

  test('ModelInfer with typed contents: outputs computed by the model, id echoed', async () => {
    const rows = [
      [1, 2, 3, 4],
      [-1, 0, 0.5, 2],
    ];
    const answer = await grpc.call<InferResponse>('ModelInfer', {
      model_name: 'linear',
      id: 'req-1',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 4], contents: { fp32_contents: rows.flat() } }],
    });
    expect(answer).toEqual({
      ok: true,
      response: {
        model_name: 'linear',
        model_version: '1',
        id: 'req-1',
        outputs: [
          { name: 'y', datatype: 'FP32', shape: [2, 3], contents: { ...emptyContents(), fp32_contents: [...y(rows[0]!), ...y(rows[1]!)] } },
        ],
        raw_output_contents: [],
      },
    });
  });

  test('ModelInfer with raw contents answers raw, from the same bytes', async () => {
    const row = [0.25, -3, 7, 1e-3];
    const answer = await grpc.call<InferResponse>('ModelInfer', {
      model_name: 'linear',
      model_version: '1',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4] }],
      outputs: [{ name: 'y' }],
      raw_input_contents: [floats(row)],
    });
    if (!answer.ok) throw new Error(answer.details);
    expect(answer.response.outputs).toEqual([{ name: 'y', datatype: 'FP32', shape: [1, 3] }]);
    expect(answer.response.raw_output_contents).toHaveLength(1);
    expect(readFloats(answer.response.raw_output_contents[0]!)).toEqual(y(row));
  });

  test('every typed contents field round-trips: INT64, BOOL, BYTES, UINT8, typed and raw', async () => {
    const typed = await grpc.call<InferResponse>('ModelInfer', {
      model_name: 'echo',
      inputs: [
        { name: 'i64', datatype: 'INT64', shape: [1, 2], contents: { int64_contents: [-5, 9007199254740991] } },
        { name: 'flag', datatype: 'BOOL', shape: [1, 2], contents: { bool_contents: [true, false] } },
        { name: 'text', datatype: 'BYTES', shape: [1, 1], contents: { bytes_contents: [Buffer.from('héllo')] } },
        { name: 'bytes', datatype: 'UINT8', shape: [1, 3], contents: { uint_contents: [0, 128, 255] } },
      ],
    });
    if (!typed.ok) throw new Error(typed.details);
    const values = Object.fromEntries(
      typed.response.outputs.map((o) => [o.name, Object.values(o.contents ?? {}).find((v) => v.length > 0)]),
    );
    expect(values).toEqual({
      i64_out: [-5, 9007199254740991],
      flag_out: [true, false],
      text_out: [Buffer.from('héllo')],
      bytes_out: [0, 128, 255],
    });

    const text = Buffer.from('héllo');
    const length = Buffer.alloc(4);
    length.writeUInt32LE(text.length);
    const raw = await grpc.call<InferResponse>('ModelInfer', {
      model_name: 'echo',
      inputs: [
        { name: 'i64', datatype: 'INT64', shape: [1, 2] },
        { name: 'flag', datatype: 'BOOL', shape: [1, 2] },
        { name: 'text', datatype: 'BYTES', shape: [1, 1] },
        { name: 'bytes', datatype: 'UINT8', shape: [1, 3] },
      ],
      raw_input_contents: [
        Buffer.from(new BigInt64Array([-5n, 1n << 62n]).buffer),
        Buffer.from([1, 0]),
        Buffer.concat([length, text]),
        Buffer.from([0, 128, 255]),
      ],
    });
    if (!raw.ok) throw new Error(raw.details);
    const [i64, flag, str, bytes] = raw.response.raw_output_contents;
    expect([...new BigInt64Array(Uint8Array.from(i64!).buffer)]).toEqual([-5n, 1n << 62n]);
    expect([...flag!]).toEqual([1, 0]);
    expect(str).toEqual(Buffer.concat([length, text]));
    expect([...bytes!]).toEqual([0, 128, 255]);
  });

  test('errors carry gRPC status codes, Kiln’s message, and the Kiln code in kiln-error-code', async () => {
    const x = (shape: number[], values: number[]) => [{ name: 'x', datatype: 'FP32', shape, contents: { fp32_contents: values } }];
    expect(await grpc.call('ModelInfer', { model_name: 'nope', inputs: x([1, 4], [1, 2, 3, 4]) })).toEqual({
      ok: false,
      code: status.NOT_FOUND,
      details: expect.stringMatching(/^Request for unknown model: 'nope' is not found; registered models: echo, linear, pair, slow/),
      kilnCode: 'KILN_ERR_MODEL_NOT_FOUND',
    });
    expect(await grpc.call('ModelReady', { name: 'linear', version: '7' })).toEqual({
      ok: false,
      code: status.NOT_FOUND,
      details: "Request for unknown model: 'linear' version 7 is not found; versions: 1",
      kilnCode: 'KILN_ERR_VERSION_NOT_FOUND',
    });
    expect(await grpc.call('ModelInfer', { model_name: 'linear', inputs: x([1, 5], [1, 2, 3, 4, 5]) })).toMatchObject({
      ok: false,
      code: status.INVALID_ARGUMENT,
      details: 'input "x" must have shape [-1, 4], received [1, 5] (dimension 1 is 5, expected 4)',
      kilnCode: 'KILN_ERR_INPUT_MISMATCH',
    });
    expect(await grpc.call('ModelInfer', { model_name: 'linear', inputs: x([1, 4], [1, 2, 3]) })).toMatchObject({
      code: status.INVALID_ARGUMENT,
      details: 'input "x" (FP32) has 3 values, but its shape holds 4',
      kilnCode: 'KILN_ERR_BAD_REQUEST',
    });
    expect(
      await grpc.call('ModelInfer', {
        model_name: 'linear',
        inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4] }],
        raw_input_contents: [Buffer.alloc(12)],
      }),
    ).toMatchObject({ code: status.INVALID_ARGUMENT, details: 'input "x" (FP32) has 12 bytes, but its shape needs 16 (4 × 4)' });
    expect(
      await grpc.call('ModelInfer', {
        model_name: 'linear',
        inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], contents: { int_contents: [1, 2, 3, 4] } }],
      }),
    ).toMatchObject({
      code: status.INVALID_ARGUMENT,
      details: 'input "x" is FP32: its values go in contents.fp32_contents, received contents.int_contents',
    });
    expect(
      await grpc.call('ModelInfer', { model_name: 'linear', inputs: x([1, 4], [1, 2, 3, 4]), outputs: [{ name: 'z' }] }),
    ).toMatchObject({
      code: status.INVALID_ARGUMENT,
      details: 'unknown output "z"; the model\'s outputs are: y',
    });
    // A message over maxRequestSize is refused by gRPC itself, before it is read.
    expect(
      await grpc.call('ModelInfer', {
        model_name: 'linear',
        inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4] }],
        raw_input_contents: [Buffer.alloc(7_000_000)],
      }),
    ).toMatchObject({ ok: false, code: status.RESOURCE_EXHAUSTED });
  });

  test('a full queue is RESOURCE_EXHAUSTED (KILN_ERR_QUEUE_FULL); the requests taken are answered', async () => {
    const request = (i: number) => ({
      model_name: 'slow',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: [i, 0, 0, 0] } }],
    });
    const answers = await Promise.all([0, 1, 2, 3, 4].map((i) => grpc.call<InferResponse>('ModelInfer', request(i))));
    const full = answers.filter((a) => !a.ok);
    expect(full.length).toBeGreaterThan(0);
    for (const a of full) expect(a).toMatchObject({ code: status.RESOURCE_EXHAUSTED, kilnCode: 'KILN_ERR_QUEUE_FULL' });
    for (const [i, a] of answers.entries()) {
      if (a.ok) expect(a.response.outputs.find((o) => o.name === 'y')!.contents!.fp32_contents).toEqual(y([i, 0, 0, 0]));
    }
  });

  test('a gRPC request and an HTTP request land in one batch', async () => {
    const [viaGrpc, viaHttp] = await Promise.all([
      grpc.call<InferResponse>('ModelInfer', {
        model_name: 'pair',
        inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: [1, 0, 0, 0] } }],
      }),
      post(`${kiln.inference}/v2/models/pair/infer`, { inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: [0, 1, 0, 0] }] }),
    ]);
    if (!viaGrpc.ok) throw new Error(viaGrpc.details);
    // The handler answers each request with the size of the batch it ran in: 2, both.
    const grpcOutputs = Object.fromEntries(
      viaGrpc.response.outputs.map((o) => [o.name, Object.values(o.contents!).find((v) => v.length > 0)]),
    );
    expect(grpcOutputs).toEqual({ y: y([1, 0, 0, 0]), batch: [2] });
    const httpOutputs = viaHttp.json.outputs as { name: string; data: number[] }[];
    expect(httpOutputs.find((o) => o.name === 'batch')!.data).toEqual([2]);
    expect(httpOutputs.find((o) => o.name === 'y')!.data).toEqual(y([0, 1, 0, 0]));
  });

  test('ModelStreamInfer: one answer per request, errors in the stream, the stream ends when the client does', async () => {
    const stream = grpc.bidi('ModelStreamInfer');
    const answers: { error_message: string; infer_response: InferResponse & { parameters?: Record<string, { string_param: string }> } }[] =
      [];
    stream.on('data', (answer: (typeof answers)[number]) => answers.push(answer));
    const ended = new Promise<{ code: number }>((resolve) => stream.on('status', resolve));
    for (const [id, row] of [
      ['a', [1, 1, 1, 1]],
      ['b', [2, 0, 0, 2]],
    ] as const) {
      stream.write({
        model_name: 'linear',
        id,
        inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4] }],
        raw_input_contents: [floats([...row])],
      });
    }
    stream.write({
      model_name: 'nope',
      id: 'c',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: [1, 2, 3, 4] } }],
    });
    stream.end();
    expect((await ended).code).toBe(status.OK);
    expect(answers).toHaveLength(3);
    const byId = new Map(answers.map((a) => [a.infer_response.id, a]));
    expect(readFloats(byId.get('a')!.infer_response.raw_output_contents[0]!)).toEqual(y([1, 1, 1, 1]));
    expect(readFloats(byId.get('b')!.infer_response.raw_output_contents[0]!)).toEqual(y([2, 0, 0, 2]));
    expect(byId.get('a')!.error_message).toBe('');
    expect(byId.get('c')).toMatchObject({
      error_message: expect.stringMatching(/^Request for unknown model: 'nope'/),
      infer_response: { model_name: 'nope', id: 'c', parameters: { kiln_error_code: { string_param: 'KILN_ERR_MODEL_NOT_FOUND' } } },
    });
  });

  test("Triton's ModelConfig, ModelStatistics and RepositoryIndex", async () => {
    expect(await grpc.call('ModelConfig', { name: 'pair' })).toEqual({
      ok: true,
      response: {
        config: {
          name: 'pair',
          platform: 'onnxruntime_onnx',
          backend: 'onnxruntime',
          max_batch_size: 2,
          input: [{ name: 'x', data_type: 'TYPE_FP32', dims: [4] }],
          output: [{ name: 'y', data_type: 'TYPE_FP32', dims: [3] }],
          dynamic_batching: { max_queue_delay_microseconds: 10_000_000, preferred_batch_size: [] },
          scheduling_choice: 'dynamic_batching',
          instance_group: [{ name: 'pair', kind: 'KIND_CPU', count: 1 }],
        },
      },
    });
    // The same figures as the HTTP statistics route: one source.
    const stats = await grpc.call<{ model_stats: { name: string; version: string; inference_count: number }[] }>('ModelStatistics', {
      name: 'linear',
    });
    const http = (await (await fetch(`${kiln.inference}/v2/models/linear/stats`)).json()) as { model_stats: { inference_count: number }[] };
    if (!stats.ok) throw new Error(stats.details);
    expect(stats.response.model_stats).toHaveLength(1);
    expect(stats.response.model_stats[0]).toMatchObject({
      name: 'linear',
      version: '1',
      inference_count: http.model_stats[0]!.inference_count,
    });
    expect(http.model_stats[0]!.inference_count).toBeGreaterThan(0);
    const all = await grpc.call<{ model_stats: { name: string }[] }>('ModelStatistics', {});
    expect(all.ok && all.response.model_stats.map((s) => s.name).sort()).toEqual(['echo', 'linear', 'pair', 'slow']);
    expect(await grpc.call('ModelStatistics', { name: 'nope' })).toMatchObject({ ok: false, code: status.NOT_FOUND });

    const index = await grpc.call<{ models: { name: string; version: string; state: string }[] }>('RepositoryIndex', { ready: true });
    expect(index.ok && index.response.models.map((m) => `${m.name} ${m.version} ${m.state}`).sort()).toEqual([
      'echo 1 READY',
      'linear 1 READY',
      'pair 1.0 READY',
      'slow 1.0 READY',
    ]);
  });
});

function emptyContents() {
  return {
    bool_contents: [],
    int_contents: [],
    int64_contents: [],
    uint_contents: [],
    uint64_contents: [],
    fp32_contents: [],
    fp64_contents: [],
    bytes_contents: [],
  };
}
