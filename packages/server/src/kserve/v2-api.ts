import type { IncomingMessage } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { sendV2Error } from '../http/create-app.js';
import { isKilnError } from '@kiln/handler-sdk/errors';
import { type WireError } from '@kiln/handler-sdk/runtime';
import { serverError } from '../errors.js';
import type { ModelVersion } from '../registry/model-version.js';
import { submit, type InferenceDeps } from '../http/inference-api.js';
import { SERVER_VERSION } from '../version.js';
import { sendParts } from '../http/send-parts.js';
import { readV2Body } from './v2-body.js';
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
    const ready = !deps.closing() && deps.registry.all().every((m) => m.health().ready);
    return reply.code(ready ? 200 : 503).send({ ready });
  });

  const withModel = (handler: (model: ModelVersion, request: FastifyRequest<ModelParams>, reply: FastifyReply) => Promise<unknown>) =>
    async (request: FastifyRequest<ModelParams>, reply: FastifyReply) => {
      let model: ModelVersion;
      try {
        model = deps.registry.resolve(request.params.model, request.params.version);
      } catch (error) {
        return sendV2Error(reply, asWireError(error));
      }
      return handler(model, request, reply);
    };

  const metadata = withModel(async (model) => ({
    name: model.name,
    versions: deps.registry.versions(model.name).map((v) => v.version),
    platform: 'onnxruntime_onnx',
    inputs: (model.signature?.inputs ?? []).map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape ?? [-1] })),
    outputs: (model.signature?.outputs ?? []).map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape ?? [-1] })),
  }));
  // Not ready is 503, as KServe answers: Triton's clients read readiness from the status alone.
  const ready = withModel(async (model, _request, reply) => {
    const isReady = model.health().ready;
    return reply.code(isReady ? 200 : 503).send({ name: model.name, ready: isReady });
  });
  const infer = withModel(async (model, request, reply) => {
    const headerLength = request.headers['inference-header-content-length'];
    const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
    let parsed;
    try {
      parsed = parseV2Request(body, headerLength === undefined ? undefined : Number(headerLength), model.signature);
    } catch (error) {
      return sendV2Error(reply, asWireError(error));
    }
    const result = await submit(model, { id: request.id, body: new Uint8Array(), contentType: undefined, headers: {}, query: {}, tensors: parsed.tensors }, reply, deps);
    if (!result.ok) return sendV2Error(reply, result.error);
    if (result.body.kind !== 'tensors') {
      return sendV2Error(reply, serverError('KILN_ERR_INTERNAL', `the handler of model "${model.name}" answered a v2 request with ${result.body.kind === 'json' ? 'JSON' : 'bytes'}; answer tensors (see postprocessTensors)`));
    }
    let encoded;
    try {
      encoded = encodeV2Response(result.body.outputs, parsed, { name: model.name, version: model.version });
    } catch (error) {
      return sendV2Error(reply, asWireError(error));
    }
    if (encoded.chunks.length === 0) return reply.type('application/json').send(encoded.header);
    reply.header('inference-header-content-length', String(encoded.header.length));
    return sendParts(reply, 'application/octet-stream', [encoded.header, ...encoded.chunks], deps.closing());
  });

  for (const prefix of ['/v2/models/:model', '/v2/models/:model/versions/:version']) {
    app.get(prefix, metadata);
    app.get(`${prefix}/ready`, ready);
  }
  // Infer bodies are read by readV2Body, which aligns binary tensors so they need no copy.
  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (request: FastifyRequest, payload: IncomingMessage) => readV2Body(payload, request.headers, deps.maxRequestSizeBytes ?? Infinity));
    for (const prefix of ['/v2/models/:model', '/v2/models/:model/versions/:version']) scope.post(`${prefix}/infer`, infer);
  });
}
