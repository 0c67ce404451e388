import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { sendV2Error } from '../http/create-app.js';
import { isKilnError, type WireError } from '@kiln/handler-sdk';
import { serverError } from '../errors.js';
import type { ModelEntry } from '../registry/model-entry.js';
import { submit, type InferenceDeps } from '../http/inference-api.js';
import { SERVER_VERSION } from '../version.js';
import { encodeV2Response, parseV2Request } from './v2-codec.js';

type ModelParams = { Params: { model: string; version?: string } };

function asWireError(error: unknown): WireError {
  if (isKilnError(error)) return { code: error.code, status: error.status, message: error.message, phase: undefined, itemIndex: 0, stack: error.stack };
  throw error;
}

/** The KServe Open Inference Protocol v2 (REST), with Triton's binary tensor extension. */
export function v2Api(app: FastifyInstance, deps: InferenceDeps): void {
  app.get('/v2', async () => ({ name: 'kiln', version: SERVER_VERSION, extensions: ['binary_tensor_data'] }));
  app.get('/v2/health/live', async () => ({ live: true }));
  app.get('/v2/health/ready', async (_request, reply) => {
    const ready = !deps.closing() && deps.registry.all().every((m) => m.state === 'ready');
    return reply.code(ready ? 200 : 503).send({ ready });
  });

  const withModel = (handler: (entry: ModelEntry, request: FastifyRequest<ModelParams>, reply: FastifyReply) => Promise<unknown>) =>
    async (request: FastifyRequest<ModelParams>, reply: FastifyReply) => {
      let entry: ModelEntry;
      try {
        entry = deps.registry.resolve(request.params.model, request.params.version);
      } catch (error) {
        return sendV2Error(reply, asWireError(error));
      }
      return handler(entry, request, reply);
    };

  const metadata = withModel(async (entry) => ({
    name: entry.name,
    versions: deps.registry.versions(entry.name).map((v) => v.version),
    platform: 'onnxruntime_onnx',
    inputs: (entry.manifest?.signature?.inputs ?? []).map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape ?? [-1] })),
    outputs: (entry.manifest?.signature?.outputs ?? []).map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape ?? [-1] })),
  }));
  // Not ready is 503, as KServe answers: Triton's clients read readiness from the status alone.
  const ready = withModel(async (entry, _request, reply) => {
    const isReady = entry.state === 'ready';
    return reply.code(isReady ? 200 : 503).send({ name: entry.name, ready: isReady });
  });
  const infer = withModel(async (entry, request, reply) => {
    const headerLength = request.headers['inference-header-content-length'];
    const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
    let parsed;
    try {
      parsed = parseV2Request(body, headerLength === undefined ? undefined : Number(headerLength), entry.manifest?.signature);
    } catch (error) {
      return sendV2Error(reply, asWireError(error));
    }
    const result = await submit(entry, { id: request.id, body: new Uint8Array(), contentType: undefined, headers: {}, query: {}, tensors: parsed.tensors }, reply, deps);
    if (!result.ok) return sendV2Error(reply, result.error);
    if (result.body.kind !== 'tensors') {
      return sendV2Error(reply, serverError('KILN_ERR_INTERNAL', `the handler of model "${entry.name}" answered a v2 request with ${result.body.kind === 'json' ? 'JSON' : 'bytes'}; answer tensors (see postprocessTensors)`));
    }
    let encoded;
    try {
      encoded = encodeV2Response(result.body.outputs, parsed, { name: entry.name, version: entry.version });
    } catch (error) {
      return sendV2Error(reply, asWireError(error));
    }
    if (encoded.headerLength === undefined) return reply.type('application/json').send(encoded.body);
    return reply.header('inference-header-content-length', String(encoded.headerLength)).type('application/octet-stream').send(encoded.body);
  });

  for (const prefix of ['/v2/models/:model', '/v2/models/:model/versions/:version']) {
    app.get(prefix, metadata);
    app.get(`${prefix}/ready`, ready);
    app.post(`${prefix}/infer`, infer);
  }
}
