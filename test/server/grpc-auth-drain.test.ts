import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { grpcClient, KSERVE_SERVICE, type InferResponse } from '../support/grpc-client.js';
import { linearExpected, linearModel } from '../support/onnx-models.js';
import { archiveModel, linearArchive, startKiln } from '../support/server.js';

/*
 * The KServe v2 gRPC API with a token, and while the server drains: each test starts its own
 * `kiln serve` (grpc.test.ts has the rest of the API, on one shared server).
 */

const service = KSERVE_SERVICE();
const TOKEN = 'grpc-test-token-0123456789';
const y = (row: number[]) => linearExpected(row).map(Math.fround);
const connect = (address: string) => grpcClient(address, service);

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'kiln-grpc-auth-'));
  archiveModel(dir, { name: 'linear', model: linearModel(), handler: 'tensor', config: '' });
  // 200 ms a batch, one at a time.
  linearArchive(dir, 'slow-inference', 'batchSize: 1\njobQueueSize: 1\nminWorkers: 1\nmaxWorkers: 1\n', 'slow');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('auth and drain', () => {
  test('with a token, every RPC needs authorization: Bearer <token>; --health-auth off opens ServerLive and ServerReady', async () => {
    const scratch = mkdtempSync(join(tmpdir(), 'kiln-grpc-auth-'));
    const server = await startKiln(['--models', `linear=${join(dir, 'store/linear.mar')}`, '--health-auth', 'off'], {
      cwd: scratch,
      env: { KILN_TOKEN: TOKEN },
    });
    expect(server.output()).toMatch(/grpc API listening on 127\.0\.0\.1:\d+ \(token required\)/);
    const client = connect(server.grpc!);
    try {
      const infer = {
        model_name: 'linear',
        inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: [1, 2, 3, 4] } }],
      };
      expect(await client.call('ServerLive', {})).toEqual({ ok: true, response: { live: true } });
      expect(await client.call('ServerReady', {})).toEqual({ ok: true, response: { ready: true } });
      expect(await client.call('ModelReady', { name: 'linear' })).toMatchObject({
        ok: false,
        code: status.UNAUTHENTICATED,
        kilnCode: 'KILN_ERR_UNAUTHORIZED',
        details: 'this API needs a token: send the metadata authorization: Bearer <token>',
      });
      expect(await client.call('ModelInfer', infer, 'not-the-token-at-all')).toMatchObject({
        code: status.UNAUTHENTICATED,
        details: 'the token in the authorization metadata does not match',
      });
      const answer = await client.call<InferResponse>('ModelInfer', infer, TOKEN);
      expect(answer.ok && answer.response.outputs[0]!.contents!.fp32_contents).toEqual(y([1, 2, 3, 4]));
      const stream = client.bidi('ModelStreamInfer');
      stream.on('data', () => {});
      const ended = await new Promise<ServiceError>((resolve) => stream.on('error', resolve));
      expect(ended.code).toBe(status.UNAUTHENTICATED);
    } finally {
      client.close();
      rmSync(scratch, { recursive: true, force: true });
    }
  });

  test('on SIGTERM, a call in flight is answered and an open stream is ended UNAVAILABLE once its request is answered', async () => {
    const scratch = mkdtempSync(join(tmpdir(), 'kiln-grpc-drain-'));
    const server = await startKiln(['--models', `slow=${join(dir, 'store/slow.mar')}`], { cwd: scratch });
    const client = connect(server.grpc!);
    try {
      const request = (id: string) => ({
        model_name: 'slow',
        id,
        inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: [1, 2, 3, 4] } }],
      });
      const stream = client.bidi('ModelStreamInfer');
      const streamed: { error_message: string; infer_response: InferResponse }[] = [];
      stream.on('data', (answer: (typeof streamed)[number]) => streamed.push(answer));
      const streamEnd = new Promise<ServiceError>((resolve) => stream.on('error', resolve));
      stream.write(request('in-stream'));
      const inFlight = client.call<InferResponse>('ModelInfer', request('unary'));
      await new Promise((r) => setTimeout(r, 100)); // both accepted, the first running
      const stopped = server.stop('SIGTERM');
      const unary = await inFlight;
      expect(unary.ok && unary.response.outputs[0]!.contents!.fp32_contents).toEqual(y([1, 2, 3, 4]));
      const end = await streamEnd;
      expect(end.code).toBe(status.UNAVAILABLE);
      expect(end.metadata.get('kiln-error-code')).toEqual(['KILN_ERR_SHUTTING_DOWN']);
      expect(streamed.map((a) => [a.infer_response.id, a.error_message])).toEqual([['in-stream', '']]);
      expect(await stopped).toBe(0);
    } finally {
      client.close();
      rmSync(scratch, { recursive: true, force: true });
    }
  });
});
