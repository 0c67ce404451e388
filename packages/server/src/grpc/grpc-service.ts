import { randomUUID } from 'node:crypto';
import { sdkError } from '@kiln/handler-sdk/errors';
import type { ServerConfig } from '../config/server-config.js';
import { serverError } from '../errors.js';
import { checkResponseSize, healthProblems, type InferenceDeps } from '../http/inference-api.js';
import { resolveAsTriton, tritonConfig } from '../kserve/v2-api.js';
import { repositoryIndex } from '../kserve/v2-repository.js';
import { TritonStats } from '../observability/triton-stats.js';
import type { ClientGone } from '../batching/batcher.js';
import type { ModelService } from '../registry/model-service.js';
import type { ModelVersion } from '../registry/model-version.js';
import { SERVER_VERSION } from '../version.js';
import type { CallNotes, ObserveDeps } from './grpc-observe.js';
import { encodeGrpcInferResponse, parseGrpcInferRequest, type InferRequestMessage, type InferResponseMessage } from './grpc-codec.js';

/*
 * What each RPC of inference.GRPCInferenceService answers, as plain functions of the request
 * message: grpc-api.ts wires them to grpc-js (auth, errors, streams, drain). They answer from the
 * same registry, batchers and checks as the v2 HTTP routes (kserve/v2-api.ts), so the two never
 * disagree.
 */

export interface GrpcServiceDeps extends ObserveDeps {
  config: ServerConfig;
  inference: InferenceDeps;
  service: ModelService;
}

interface ModelRef {
  name?: string;
  version?: string;
}

/** Errors that came back as a request's result: serve.ts logs those already, with their model. */
export const reported = new WeakSet<Error>();

/** The unary RPCs, by method name. */
export function unaryRpcs(deps: GrpcServiceDeps) {
  const { inference } = deps;
  const registry = inference.registry;
  const resolve = (ref: ModelRef) => resolveAsTriton(registry, ref.name ?? '', ref.version || undefined);
  const tensor = (t: { name: string; datatype: string; shape?: readonly number[] | undefined }) => ({
    name: t.name,
    datatype: t.datatype,
    shape: t.shape ?? [-1],
  });
  return {
    ServerLive: async () => ({ live: true }),
    // Ready as /ping and /v2/health/ready mean it: false while the server drains.
    ServerReady: async () => ({ ready: healthProblems(inference).length === 0 }),
    ModelReady: async (request: ModelRef) => ({ ready: resolve(request).health().ready }),
    ServerMetadata: async () => ({ name: 'kiln', version: SERVER_VERSION, extensions: ['binary_tensor_data', 'statistics'] }),
    ModelMetadata: async (request: ModelRef) => {
      const model = resolve(request);
      return {
        name: model.name,
        versions: registry.versions(model.name).map((v) => v.version),
        platform: 'onnxruntime_onnx',
        inputs: (model.signature?.inputs ?? []).map(tensor),
        outputs: (model.signature?.outputs ?? []).map(tensor),
      };
    },
    ModelInfer: (request: InferRequestMessage, gone: ClientGone, notes: CallNotes) => infer(inference, request, gone, notes),
    ModelConfig: async (request: ModelRef) => ({ config: tritonConfig(resolve(request)) }),
    ModelStatistics: async (request: ModelRef) => {
      const versions: readonly ModelVersion[] = !request.name
        ? registry.all()
        : request.version
          ? [resolve(request)]
          : registry.versions(resolve(request).name);
      return {
        model_stats: versions.map((v) => v.measured?.stats.toJson(v.name, v.version) ?? new TritonStats().toJson(v.name, v.version)),
      };
    },
    // The store's unloaded archives are listed only with --enable-model-api, as over HTTP (they
    // name the store's files); the models loaded always are, as GET /v2/models lists them.
    RepositoryIndex: async (request: { ready?: boolean }) => {
      const entries = deps.config.enableModelApi
        ? repositoryIndex(deps.service)
        : registry.all().map((v) => ({
            name: v.name,
            version: v.version,
            state: v.state.kind === 'ready' ? 'READY' : v.state.kind === 'loading' ? 'LOADING' : 'UNAVAILABLE',
            reason: v.state.kind === 'ready' ? '' : v.reason,
          }));
      return { models: entries.filter((entry) => request.ready !== true || entry.state === 'READY') };
    },
  };
}

/**
 * One ModelInfer (or one request of a ModelStreamInfer): decoded as the v2 HTTP route decodes its
 * body, queued on the same batcher, so gRPC and HTTP requests join the same batches.
 */
export async function infer(
  deps: InferenceDeps,
  message: InferRequestMessage,
  gone: ClientGone,
  notes: CallNotes,
): Promise<InferResponseMessage> {
  if (deps.closing()) throw serverError('KILN_ERR_SHUTTING_DOWN', 'the server is shutting down and takes no new requests');
  const model = resolveAsTriton(deps.registry, message.model_name ?? '', message.model_version || undefined);
  notes.version = model; // a refusal from here on is counted against the model, as over HTTP
  const parsed = parseGrpcInferRequest(message, model.signature, { allowNonFinite: model.config.allowNonFinite, id: message.id ?? '' });
  const requestId = randomUUID();
  notes.requestId = requestId;
  notes.trace = {};
  const result = await model.submit(
    { id: requestId, body: new Uint8Array(), contentType: undefined, headers: {}, query: {}, tensors: parsed.tensors },
    gone,
    notes.trace,
  );
  deps.onResult?.(model, result, requestId);
  if (!result.ok) {
    reported.add(result.error);
    throw result.error;
  }
  if (result.body.kind !== 'tensors') {
    throw sdkError(
      'KILN_ERR_HANDLER_FAILED',
      `the handler of model "${model.name}" answered a v2 request with ${result.body.kind === 'json' ? 'JSON' : 'bytes'}: a v2 request must be answered with named tensors (return the model's outputs from postprocessTensors)`,
    );
  }
  const encoded = encodeGrpcInferResponse(result.body.outputs, parsed, { name: model.name, version: model.version });
  checkResponseSize(encoded.bytes, deps.maxResponseSizeBytes, model);
  return encoded.message;
}
