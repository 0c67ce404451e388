import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { grpcClient, KSERVE_SERVICE, TS_INFERENCE_SERVICE, type GrpcTestClient } from '../support/grpc-client.js';
import { kiln as runKiln } from '../support/kiln.js';
import { linearExpected, linearModel, writeModel } from '../support/onnx-models.js';
import { scrape, total } from '../support/scrape.js';
import { linearArchive, startKiln, until, type RunningKiln } from '../support/server.js';

/*
 * gRPC's inference calls in the server's books: each ModelInfer, each request of a ModelStreamInfer
 * and each TorchServe Predictions / StreamPredictions is counted in kiln_requests_total (with the
 * HTTP status the same outcome gets over HTTP), timed into its model's histogram and Triton's
 * statistics, and written to the access log with its gRPC code. The counts follow from the calls
 * sent below.
 */

const floats = (values: number[]) => Buffer.from(new Float32Array(values).buffer);
const ROW = [1, 2, 3, 4];
const rawInfer = (model: string) => ({
  model_name: model,
  inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4] }],
  raw_input_contents: [floats(ROW)],
});

interface AccessLine {
  method: string;
  path: string;
  model?: string;
  version?: string;
  status: number;
  grpcStatus?: number;
  errorCode?: string;
  bytesIn: number;
  bytesOut: number;
  queueMs?: number;
  batchSize?: number;
  remoteAddress: string;
  totalMs: number;
}

let kiln: RunningKiln;
let kserve: GrpcTestClient;
let torchserve: GrpcTestClient;
const dir = mkdtempSync(join(tmpdir(), 'kiln-grpc-books-'));
const accessFile = join(dir, 'access.jsonl');

beforeAll(async () => {
  writeModel(dir, 'tensors.onnx', linearModel());
  const run = runKiln(
    ['archive', '--model-name', 'tensors', '-v', '1', '--serialized-file', 'tensors.onnx', '--handler', 'tensor', '--export-path', 'store'],
    { cwd: dir },
  );
  expect(run.status).toBe(0);
  linearArchive(dir, 'linear', 'minWorkers: 1\n');
  kiln = await startKiln(['--model-store', 'store', '--models', 'tensors=tensors.mar', 'linear=linear.mar', '--access-log', accessFile], {
    cwd: dir,
    shared: true,
  });
  kserve = grpcClient(kiln.grpc!, KSERVE_SERVICE());
  torchserve = grpcClient(kiln.tsGrpcInference!, TS_INFERENCE_SERVICE());
});
afterAll(async () => {
  kserve?.close();
  torchserve?.close();
  await kiln?.stop('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

describe('gRPC calls in the metrics, the statistics and the access log', () => {
  test('every inference call is counted once, as its HTTP twin would be', async () => {
    const ok = await kserve.call<{ raw_output_contents: Buffer[] }>('ModelInfer', rawInfer('tensors'));
    expect(ok.ok && [...new Float32Array(Uint8Array.from(ok.response.raw_output_contents[0]!).buffer)]).toEqual(
      linearExpected(ROW).map(Math.fround),
    );
    expect(
      await kserve.call('ModelInfer', { ...rawInfer('tensors'), inputs: [{ name: 'z', datatype: 'FP32', shape: [1, 4] }] }),
    ).toMatchObject({ ok: false, code: status.INVALID_ARGUMENT, kilnCode: 'KILN_ERR_INPUT_MISMATCH' });
    expect(await kserve.call('ModelInfer', rawInfer('nope'))).toMatchObject({ ok: false, code: status.NOT_FOUND });
    // A stream of two requests counts two.
    const stream = kserve.bidi('ModelStreamInfer');
    const answers: unknown[] = [];
    stream.on('data', (answer: unknown) => answers.push(answer));
    const ended = new Promise((resolve) => stream.on('status', resolve));
    stream.write(rawInfer('tensors'));
    stream.write(rawInfer('tensors'));
    stream.end();
    await ended;
    expect(answers).toHaveLength(2);
    const input = { data: Buffer.from(JSON.stringify({ row: ROW })) };
    expect(await torchserve.call('Predictions', { model_name: 'linear', input })).toMatchObject({ ok: true });
    expect(await torchserve.stream('StreamPredictions', { model_name: 'linear', input })).toMatchObject({ ok: true });
    expect(await torchserve.call('Predictions', { model_name: 'linear', model_version: '9.9', input })).toMatchObject({
      ok: false,
      code: status.NOT_FOUND,
    });
    // Not inference calls: not counted.
    expect(await kserve.call('ServerLive', {})).toMatchObject({ ok: true });
    expect(await torchserve.call('Ping', {})).toMatchObject({ ok: true });

    const samples = await scrape(kiln);
    const tensors = 'model_name="tensors",model_version="1"';
    const linear = 'model_name="linear",model_version="1.0"';
    expect(total(samples, 'kiln_requests_total', `${tensors},status="200",error_code="",api="v2-grpc"`)).toBe(3);
    expect(total(samples, 'kiln_requests_total', `${tensors},status="400",error_code="KILN_ERR_INPUT_MISMATCH",api="v2-grpc"`)).toBe(1);
    expect(
      total(
        samples,
        'kiln_requests_total',
        'model_name="",model_version="",status="404",error_code="KILN_ERR_MODEL_NOT_FOUND",api="v2-grpc"',
      ),
    ).toBe(1);
    expect(total(samples, 'kiln_requests_total', `${linear},status="200",error_code="",api="torchserve-grpc"`)).toBe(2);
    expect(total(samples, 'kiln_requests_total', 'status="404",error_code="KILN_ERR_VERSION_NOT_FOUND",api="torchserve-grpc"')).toBe(1);
    expect(total(samples, 'kiln_requests_total')).toBe(8);
    // Timed end to end: the calls that reached a model.
    expect(total(samples, 'kiln_request_seconds_count', tensors)).toBe(3);
    expect(total(samples, 'kiln_request_seconds_count', linear)).toBe(2);

    // Triton's statistics over gRPC count the gRPC successes too.
    const stats = await kserve.call<{ model_stats: { inference_count: number; inference_stats: { success: { count: number } } }[] }>(
      'ModelStatistics',
      { name: 'tensors' },
    );
    expect(stats.ok && stats.response.model_stats[0]!.inference_stats.success.count).toBe(3);

    // One access-log line per counted call, with its gRPC code, path, sizes, queue wait and batch.
    // (The HTTP scrape of /metrics has its line too.)
    await until(() => existsSync(accessFile) && readFileSync(accessFile, 'utf8').trim().split('\n').length >= 9);
    const all = readFileSync(accessFile, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as AccessLine);
    expect(all.filter((l) => l.method !== 'GRPC').map((l) => `${l.method} ${l.path}`)).toEqual(['GET /metrics']);
    const lines = all.filter((l) => l.method === 'GRPC');
    expect(lines).toHaveLength(8);
    for (const line of lines) {
      expect(line).toMatchObject({ remoteAddress: '127.0.0.1' });
      expect(line.totalMs).toBeGreaterThan(0);
    }
    const first = lines.find((l) => l.path === '/inference.GRPCInferenceService/ModelInfer' && l.status === 200)!;
    expect(first).toMatchObject({ model: 'tensors', version: '1', grpcStatus: status.OK, batchSize: 1 });
    expect(first.errorCode).toBeUndefined();
    expect(first.queueMs).toBeGreaterThanOrEqual(0);
    // The message's bytes: the 16 input bytes with their names and shape; 12 output bytes likewise.
    expect(first.bytesIn).toBeGreaterThan(16);
    expect(first.bytesOut).toBeGreaterThan(12);
    expect(lines.filter((l) => l.path === '/inference.GRPCInferenceService/ModelStreamInfer')).toHaveLength(2);
    expect(lines.find((l) => l.status === 400)).toMatchObject({
      model: 'tensors',
      grpcStatus: status.INVALID_ARGUMENT,
      errorCode: 'KILN_ERR_INPUT_MISMATCH',
    });
    const notFound = lines.find((l) => l.errorCode === 'KILN_ERR_MODEL_NOT_FOUND')!;
    expect(notFound).toMatchObject({ status: 404, grpcStatus: status.NOT_FOUND });
    expect(notFound.model).toBeUndefined();
    expect(notFound.queueMs).toBeUndefined();
    expect(lines.filter((l) => l.path.startsWith('/org.pytorch.serve.grpc.inference.InferenceAPIsService/')).map((l) => l.status)).toEqual(
      expect.arrayContaining([200, 200, 404]),
    );
  });
});
