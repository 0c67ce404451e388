import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { grpcClient, TS_INFERENCE_SERVICE, TS_MANAGEMENT_SERVICE, type Reply } from '../support/grpc-client.js';
import { linearExpected } from '../support/onnx-models.js';
import { linearArchive, startKiln, type RunningKiln } from '../support/server.js';

/*
 * TorchServe's gRPC APIs of a real `kiln serve`, called by a grpc-js client built from the .protos
 * the server ships (TorchServe's own: packages/server/proto/torchserve).
 */

const services = { inference: TS_INFERENCE_SERVICE(), management: TS_MANAGEMENT_SERVICE() };
const TOKEN = 'ts-grpc-test-token-0123456789';

const connect = (address: string, api: keyof typeof services) => grpcClient(address, services[api]);

const ROW = [1, 2, 3, 4];
const input = (row: unknown) => ({ data: Buffer.from(JSON.stringify({ row })) });
const predictionOf = (reply: Reply<{ prediction: Buffer }>) => {
  if (!reply.ok) throw new Error(`${reply.code} ${reply.details}`);
  return JSON.parse(reply.response.prediction.toString()) as { y: number[] };
};
const msgOf = (reply: Reply<{ msg: string }>): unknown => {
  if (!reply.ok) throw new Error(`${reply.code} ${reply.details}`);
  return JSON.parse(reply.response.msg);
};

let kiln: RunningKiln;
let dir: string;
let inference: ReturnType<typeof connect>;
let management: ReturnType<typeof connect>;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kiln-ts-grpc-'));
  linearArchive(dir, 'linear', 'minWorkers: 1\n');
  // Registered over gRPC below, as version 2.0 of "linear".
  linearArchive(dir, 'linear', 'minWorkers: 1\n', 'other', '2.0');
  kiln = await startKiln(['--model-store', join(dir, 'store'), '--models', 'linear=linear.mar', '--enable-model-api'], { shared: true });
  inference = connect(kiln.tsGrpcInference!, 'inference');
  management = connect(kiln.tsGrpcManagement!, 'management');
});
afterAll(async () => {
  inference?.close();
  management?.close();
  await kiln?.stop('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

describe("TorchServe's gRPC inference API", () => {
  test('both APIs listen on the addresses given, and say so', () => {
    expect(kiln.output()).toMatch(/torchserve grpc inference API listening on 127\.0\.0\.1:\d+/);
    expect(kiln.output()).toMatch(/torchserve grpc management API listening on 127\.0\.0\.1:\d+/);
  });

  test("Ping answers GET /ping's body", async () => {
    const reply = await inference.call<{ health: string }>('Ping', {});
    expect(reply).toEqual({ ok: true, response: { health: await (await fetch(`${kiln.inference}/ping`)).text() } });
    expect(JSON.parse((reply as { response: { health: string } }).response.health)).toEqual({ status: 'Healthy' });
  });

  test('Predictions: input["data"] is the body, as POST /predictions/{model}[/{version}] takes it', async () => {
    const expected = linearExpected(ROW).map(Math.fround);
    expect(predictionOf(await inference.call('Predictions', { model_name: 'linear', input: input(ROW) })).y).toEqual(expected);
    const versioned = await inference.call<{ prediction: Buffer }>('Predictions', {
      model_name: 'linear',
      model_version: '1.0',
      input: input(ROW),
    });
    expect(predictionOf(versioned).y).toEqual(expected);
    // Several entries are the request's fields, as a multipart form's: the handler reads `data`.
    const fields = await inference.call<{ prediction: Buffer }>('Predictions', {
      model_name: 'linear',
      input: { ...input(ROW), other: Buffer.from('ignored') },
    });
    expect(predictionOf(fields).y).toEqual(expected);
  });

  test('StreamPredictions sends the one answer, then ends', async () => {
    const reply = await inference.stream<{ prediction: Buffer }>('StreamPredictions', { model_name: 'linear', input: input(ROW) });
    expect(reply.ok).toBe(true);
    const messages = (reply as { response: { prediction: Buffer }[] }).response;
    expect(messages).toHaveLength(1);
    expect(predictionOf({ ok: true, response: messages[0]! }).y).toEqual(linearExpected(ROW).map(Math.fround));
  });

  test("errors: the mapped status, Kiln's message, and its code in kiln-error-code", async () => {
    expect(await inference.call('Predictions', { model_name: 'nope', input: input(ROW) })).toMatchObject({
      ok: false,
      code: status.NOT_FOUND,
      kilnCode: 'KILN_ERR_MODEL_NOT_FOUND',
      details: expect.stringContaining('Model not found: nope'),
    });
    expect(await inference.call('Predictions', { model_name: 'linear', model_version: '9.9', input: input(ROW) })).toMatchObject({
      ok: false,
      code: status.NOT_FOUND,
      kilnCode: 'KILN_ERR_VERSION_NOT_FOUND',
    });
    expect(await inference.call('Predictions', { model_name: 'linear', input: input([1]) })).toMatchObject({
      ok: false,
      code: status.INVALID_ARGUMENT,
      kilnCode: 'KILN_ERR_BAD_REQUEST',
    });
    expect(await inference.stream('StreamPredictions', { model_name: 'nope', input: input(ROW) })).toMatchObject({
      ok: false,
      code: status.NOT_FOUND,
      kilnCode: 'KILN_ERR_MODEL_NOT_FOUND',
    });
    // Sequence batching is not served.
    const bidi = inference.bidi('StreamPredictions2');
    const refused = new Promise<ServiceError>((resolve) => bidi.on('error', resolve));
    bidi.end();
    expect((await refused).code).toBe(status.UNIMPLEMENTED);
    expect(await inference.call('Predictions', { input: input(ROW) })).toMatchObject({
      ok: false,
      code: status.INVALID_ARGUMENT,
      kilnCode: 'KILN_ERR_INVALID_PARAMETER',
    });
  });
});

describe("TorchServe's gRPC management API", () => {
  test("ListModels and DescribeModel answer the HTTP routes' bodies", async () => {
    const list = await management.call<{ msg: string }>('ListModels', {});
    expect(list).toEqual({ ok: true, response: { msg: await (await fetch(`${kiln.management}/models`)).text() } });
    expect(msgOf(list)).toMatchObject({ models: [{ modelName: 'linear' }] });
    const described = msgOf(await management.call('DescribeModel', { model_name: 'linear' })) as Record<string, unknown>[];
    expect(described).toHaveLength(1);
    expect(described[0]).toMatchObject({ modelName: 'linear', modelVersion: '1.0', isDefault: true });
    expect(await management.call('DescribeModel', { model_name: 'nope' })).toMatchObject({
      ok: false,
      code: status.NOT_FOUND,
      kilnCode: 'KILN_ERR_MODEL_NOT_FOUND',
    });
  });

  test('RegisterModel, ScaleWorker, SetDefault and UnregisterModel do what the HTTP routes do', async () => {
    const registered = await management.call<{ msg: string }>('RegisterModel', {
      url: 'other.mar',
      model_name: 'linear',
      initial_workers: 1,
      synchronous: true,
    });
    expect(msgOf(registered)).toEqual({ status: 'Model "linear" Version: 2.0 registered with 1 initial workers' });
    // The version 1.0 stays the default, and answers.
    expect(predictionOf(await inference.call('Predictions', { model_name: 'linear', model_version: '2.0', input: input(ROW) })).y).toEqual(
      linearExpected(ROW).map(Math.fround),
    );

    const scaled = await management.call<{ msg: string }>('ScaleWorker', {
      model_name: 'linear',
      model_version: '2.0',
      min_worker: 2,
      synchronous: true,
    });
    expect(msgOf(scaled)).toEqual({ status: 'Workers scaled to 2 for model: linear, version: 2.0' });
    expect(msgOf(await management.call('ScaleWorker', { model_name: 'linear', min_worker: 1 }))).toEqual({
      status: 'Processing worker updates...',
    });
    expect(await management.call('ScaleWorker', { model_name: 'linear', min_worker: 3, max_worker: 2 })).toMatchObject({
      ok: false,
      code: status.INVALID_ARGUMENT,
      kilnCode: 'KILN_ERR_INVALID_PARAMETER',
    });

    expect(msgOf(await management.call('SetDefault', { model_name: 'linear', model_version: '2.0' }))).toEqual({
      status: 'Default version successfully updated for model "linear" to "2.0"',
    });
    const all = msgOf(await management.call('DescribeModel', { model_name: 'linear', model_version: 'all' })) as Record<string, unknown>[];
    expect(all.map((v) => [v.modelVersion, v.isDefault])).toEqual([
      ['1.0', false],
      ['2.0', true],
    ]);
    expect(await management.call('UnregisterModel', { model_name: 'linear', model_version: '2.0' })).toMatchObject({
      ok: false,
      code: status.FAILED_PRECONDITION,
      kilnCode: 'KILN_ERR_DEFAULT_VERSION_IN_USE',
    });
    expect(msgOf(await management.call('SetDefault', { model_name: 'linear', model_version: '1.0' }))).toMatchObject({
      status: expect.stringContaining('to "1.0"'),
    });
    expect(msgOf(await management.call('UnregisterModel', { model_name: 'linear', model_version: '2.0' }))).toEqual({
      status: 'Model "linear" unregistered',
    });
    const after = msgOf(await management.call('DescribeModel', { model_name: 'linear', model_version: 'all' })) as unknown[];
    expect(after).toHaveLength(1);
  });

  test('RegisterModel refuses what a Kiln archive cannot take', async () => {
    expect(await management.call('RegisterModel', { model_name: 'x' })).toMatchObject({
      ok: false,
      code: status.INVALID_ARGUMENT,
      kilnCode: 'KILN_ERR_INVALID_PARAMETER',
      details: expect.stringContaining('Parameter url is required'),
    });
    expect(await management.call('RegisterModel', { url: 'other.mar', handler: 'image_classifier' })).toMatchObject({
      ok: false,
      code: status.INVALID_ARGUMENT,
      kilnCode: 'KILN_ERR_INVALID_PARAMETER',
    });
    expect(await management.call('RegisterModel', { url: 'other.mar', runtime: 'python' })).toMatchObject({
      ok: false,
      code: status.INVALID_ARGUMENT,
      kilnCode: 'KILN_ERR_INVALID_PARAMETER',
    });
  });
});

describe('without --enable-model-api, and with a token', () => {
  test('RegisterModel and UnregisterModel are FAILED_PRECONDITION; every RPC but an open Ping needs the token', async () => {
    const scratch = mkdtempSync(join(tmpdir(), 'kiln-ts-grpc-auth-'));
    const server = await startKiln(['--models', `linear=${join(dir, 'store/linear.mar')}`, '--health-auth', 'off'], {
      cwd: scratch,
      env: { KILN_TOKEN: TOKEN },
    });
    expect(server.output()).toMatch(/torchserve grpc inference API listening on 127\.0\.0\.1:\d+ \(token required\)/);
    expect(server.output()).toMatch(/torchserve grpc management API listening on 127\.0\.0\.1:\d+ \(token required\)/);
    const inf = connect(server.tsGrpcInference!, 'inference');
    const mgmt = connect(server.tsGrpcManagement!, 'management');
    try {
      const unauthenticated = { ok: false, code: status.UNAUTHENTICATED, kilnCode: 'KILN_ERR_UNAUTHORIZED' };
      expect(await inf.call('Ping', {})).toMatchObject({ ok: true });
      expect(await inf.call('Predictions', { model_name: 'linear', input: input(ROW) })).toMatchObject(unauthenticated);
      expect(await inf.call('Predictions', { model_name: 'linear', input: input(ROW) }, 'wrong')).toMatchObject({
        ...unauthenticated,
        details: 'the token in the authorization metadata does not match',
      });
      expect(await inf.stream('StreamPredictions', { model_name: 'linear', input: input(ROW) })).toMatchObject(unauthenticated);
      expect(predictionOf(await inf.call('Predictions', { model_name: 'linear', input: input(ROW) }, TOKEN)).y).toEqual(
        linearExpected(ROW).map(Math.fround),
      );
      expect(await mgmt.call('ListModels', {})).toMatchObject(unauthenticated);
      expect(msgOf(await mgmt.call('ListModels', {}, TOKEN))).toMatchObject({ models: [{ modelName: 'linear' }] });

      const disabled = {
        ok: false,
        code: status.FAILED_PRECONDITION,
        kilnCode: 'KILN_ERR_MODEL_API_DISABLED',
        details: expect.stringContaining('over gRPC is off; start kiln serve with --enable-model-api'),
      };
      expect(await mgmt.call('RegisterModel', { url: 'linear.mar' }, TOKEN)).toMatchObject(disabled);
      expect(await mgmt.call('UnregisterModel', { model_name: 'linear' }, TOKEN)).toMatchObject(disabled);
    } finally {
      inf.close();
      mgmt.close();
      await server.stop('SIGKILL');
      rmSync(scratch, { recursive: true, force: true });
    }
  });

  test('off turns each API off', async () => {
    const server = await startKiln([
      '--models',
      `linear=${join(dir, 'store/linear.mar')}`,
      '--ts-grpc-inference-address',
      'off',
      '--ts-grpc-management-address',
      'off',
    ]);
    try {
      expect(server.tsGrpcInference).toBeUndefined();
      expect(server.tsGrpcManagement).toBeUndefined();
      expect(server.grpc).toBeDefined();
    } finally {
      await server.stop('SIGKILL');
    }
  });
});
