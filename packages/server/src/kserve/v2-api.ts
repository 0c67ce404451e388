import type { IncomingMessage } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { sdkError } from '@kiln/handler-sdk/errors';
import type { TensorSpec } from '@kiln/handler-sdk/runtime';
import { kserveScope } from '../http/create-app.js';
import { checkResponseSize, healthProblems, submit, type InferenceDeps } from '../http/inference-api.js';
import { TritonStats } from '../observability/triton-stats.js';
import type { ModelVersion } from '../registry/model-version.js';
import type { ModelRegistry } from '../registry/registry.js';
import { serverError } from '../errors.js';
import { SERVER_VERSION } from '../version.js';
import { sendParts } from '../http/send-parts.js';
import { readV2Body } from './v2-body.js';
import { encodeV2Response, parseV2Request } from './v2-codec.js';

type ModelParams = { Params: { model: string; version?: string } };

/**
 * The KServe Open Inference Protocol v2 (REST), with Triton's binary tensor extension. Its routes
 * throw; their scope's error handler answers in KServe's shape.
 */
export function v2Api(app: FastifyInstance, deps: InferenceDeps): void {
  kserveScope(app, { maxRequestSizeBytes: deps.maxRequestSizeBytes ?? Infinity, onServerError: deps.onServerError }, (scope) =>
    v2Routes(scope, deps),
  );
}

function v2Routes(app: FastifyInstance, deps: InferenceDeps): void {
  app.get('/v2', async () => ({ name: 'kiln', version: SERVER_VERSION, extensions: ['binary_tensor_data', 'statistics'] }));
  app.get('/v2/health/live', async () => ({ live: true }));
  // Ready means healthy as /ping means it (healthProblems), so the two never disagree.
  app.get('/v2/health/ready', async (_request, reply) => {
    const ready = healthProblems(deps).length === 0;
    return reply.code(ready ? 200 : 503).send({ ready });
  });

  const resolve = (request: FastifyRequest<ModelParams>) => resolveAsTriton(deps.registry, request.params.model, request.params.version);

  const metadata = async (request: FastifyRequest<ModelParams>) => {
    const model = resolve(request);
    return {
      name: model.name,
      versions: deps.registry.versions(model.name).map((v) => v.version),
      platform: 'onnxruntime_onnx',
      inputs: (model.signature?.inputs ?? []).map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape ?? [-1] })),
      outputs: (model.signature?.outputs ?? []).map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape ?? [-1] })),
    };
  };
  // Not ready is 503, as KServe answers: Triton's clients read readiness from the status alone.
  const ready = async (request: FastifyRequest<ModelParams>, reply: FastifyReply) => {
    const model = resolve(request);
    const isReady = model.health().ready;
    return reply.code(isReady ? 200 : 503).send({ name: model.name, ready: isReady });
  };
  const infer = async (request: FastifyRequest<ModelParams>, reply: FastifyReply) => {
    const model = resolve(request);
    const headerLength = request.headers['inference-header-content-length'];
    // Decimal digits only: Number() would also take "0xd8", "1e2" or " 12 ".
    if (headerLength !== undefined && (typeof headerLength !== 'string' || !/^\d{1,15}$/.test(headerLength))) {
      throw sdkError(
        'KILN_ERR_BAD_REQUEST',
        `Inference-Header-Content-Length must be a decimal byte count, received ${JSON.stringify(headerLength)}`,
      );
    }
    const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
    const parsed = parseV2Request(body, typeof headerLength === 'string' ? Number(headerLength) : undefined, model.signature, {
      allowNonFinite: model.config.allowNonFinite,
    });
    const result = await submit(
      model,
      { id: request.id, body: new Uint8Array(), contentType: undefined, headers: {}, query: {}, tensors: parsed.tensors },
      reply,
      deps,
    );
    if (!result.ok) throw result.error;
    if (result.body.kind !== 'tensors') {
      throw sdkError(
        'KILN_ERR_HANDLER_FAILED',
        `the handler of model "${model.name}" answered a v2 request with ${result.body.kind === 'json' ? 'JSON' : 'bytes'}: a v2 request must be answered with named tensors (return the model's outputs from postprocessTensors)`,
      );
    }
    const encoded = encodeV2Response(result.body.outputs, parsed, { name: model.name, version: model.version });
    checkResponseSize(
      Buffer.byteLength(encoded.header) + encoded.chunks.reduce((n, chunk) => n + chunk.byteLength, 0),
      deps.maxResponseSizeBytes,
      model,
    );
    if (encoded.chunks.length === 0) return reply.type('application/json').send(encoded.header);
    reply.header('inference-header-content-length', String(encoded.header.length));
    return sendParts(reply, 'application/octet-stream', [encoded.header, ...encoded.chunks], deps.closing());
  };

  for (const prefix of ['/v2/models/:model', '/v2/models/:model/versions/:version']) {
    app.get(prefix, metadata);
    app.get(`${prefix}/ready`, ready);
  }
  // Triton's repository index, as a GET: every version, its state, and why when it cannot serve.
  app.get('/v2/models', async () =>
    deps.registry.all().map((v) => ({
      name: v.name,
      version: v.version,
      state: v.state.kind === 'ready' ? 'READY' : v.state.kind === 'loading' ? 'LOADING' : 'UNAVAILABLE',
      ...(v.state.kind === 'ready' ? {} : { reason: v.reason }),
    })),
  );
  for (const prefix of ['/v2/models/:model', '/v2/models/:model/versions/:version']) {
    app.get<ModelParams>(`${prefix}/config`, async (request) => tritonConfig(resolve(request)));
  }
  // Triton's statistics extension: every version, every version of a model, or one version.
  const stats = (versions: readonly ModelVersion[]) => ({
    model_stats: versions.map((v) => v.measured?.stats.toJson(v.name, v.version) ?? new TritonStats().toJson(v.name, v.version)),
  });
  app.get('/v2/models/stats', async () => stats(deps.registry.all()));
  app.get<ModelParams>('/v2/models/:model/stats', async (request) => stats(deps.registry.versions(resolve(request).name)));
  app.get<ModelParams>('/v2/models/:model/versions/:version/stats', async (request) => stats([resolve(request)]));
  // Infer bodies are read by readV2Body, which aligns binary tensors so they need no copy.
  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (request: FastifyRequest, payload: IncomingMessage) =>
      readV2Body(payload, request.headers, deps.maxRequestSizeBytes ?? Infinity),
    );
    for (const prefix of ['/v2/models/:model', '/v2/models/:model/versions/:version'])
      scope.post(`${prefix}/infer`, { config: { inference: 'v2' } }, infer);
  });
}

/**
 * The version a v2 path names. An unknown model or version is 404 with Triton's wording, which
 * Triton's clients and tests look for ("Request for unknown model"), then Kiln's list of what is
 * registered.
 */
export function resolveAsTriton(registry: ModelRegistry, name: string, version: string | undefined): ModelVersion {
  const model = registry.versions(name);
  if (model.length === 0) {
    const known = registry.names();
    throw serverError(
      'KILN_ERR_MODEL_NOT_FOUND',
      `Request for unknown model: '${name}' is not found; ${known.length > 0 ? `registered models: ${known.join(', ')}` : 'no models are registered'}`,
    );
  }
  if (version !== undefined && !model.some((v) => v.version === version)) {
    throw serverError(
      'KILN_ERR_VERSION_NOT_FOUND',
      `Request for unknown model: '${name}' version ${version} is not found; versions: ${model.map((v) => v.version).join(', ')}`,
    );
  }
  return registry.resolve(name, version);
}

/**
 * A version's configuration in Triton's JSON shape (model_config.proto), for its clients: with a
 * dynamic first dimension the model batches, `max_batch_size` is batchSize and `dims` leave the
 * batch out, as Triton writes them.
 */
export function tritonConfig(model: ModelVersion) {
  const inputs = model.signature?.inputs ?? [];
  const batches = inputs.length > 0 && inputs.every((t) => t.shape?.[0] === -1);
  const tensor = (t: TensorSpec) => {
    const shape = t.shape ?? [-1];
    return { name: t.name, data_type: `TYPE_${t.datatype === 'BYTES' ? 'STRING' : t.datatype}`, dims: batches ? shape.slice(1) : shape };
  };
  const c = model.config;
  return {
    name: model.name,
    platform: 'onnxruntime_onnx',
    backend: 'onnxruntime',
    max_batch_size: batches ? c.batchSize : 0,
    input: inputs.map(tensor),
    output: (model.signature?.outputs ?? []).map(tensor),
    ...(batches && c.batchSize > 1
      ? { dynamic_batching: { max_queue_delay_microseconds: c.maxBatchDelayMs === 'auto' ? 0 : c.maxBatchDelayMs * 1000 } }
      : {}),
    instance_group: [instanceGroup(model)],
    // Triton's config has no field for an ONNX Runtime provider: the ones in use, first the one
    // that runs, as a parameter (Triton's own parameters are string_value maps too).
    parameters: { execution_providers: { string_value: model.providers.join(',') } },
  };
}

/** KIND_GPU only when the version's sessions really run on a GPU provider, with the GPUs its workers took. */
function instanceGroup(model: ModelVersion) {
  const onGpu = model.onGpu;
  return {
    name: model.name,
    kind: onGpu ? 'KIND_GPU' : 'KIND_CPU',
    count: model.config.minWorkers,
    ...(onGpu && model.gpus.length > 0 ? { gpus: model.gpus } : {}),
  };
}
