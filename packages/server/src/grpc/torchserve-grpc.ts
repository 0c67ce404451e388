import { randomUUID } from 'node:crypto';
import type * as Grpc from '@grpc/grpc-js';
import { toKilnError, type KilnError } from '@kiln/handler-sdk/errors';
import { renderBody, type WireRequest } from '@kiln/handler-sdk/runtime';
import { serverError } from '../errors.js';
import type { ClientGone } from '../batching/batcher.js';
import { checkResponseSize, healthProblems } from '../http/inference-api.js';
import {
  MAX_WORKERS,
  describeModel,
  listModels,
  registerModel,
  requireModelApiOf,
  scaleModel,
  setDefaultVersion,
  unregisterModel,
  type ManagementAnswer,
} from '../http/management-api.js';
import type { ServerLog } from '../observability/logs.js';
import { drainGrpc, listenGrpc, loadGrpc, statusOf, tokenCheck, unaryHandler, type GrpcApi } from './grpc-api.js';
import { grpcObserver, measured, type CallNotes } from './grpc-observe.js';
import { reported, type GrpcServiceDeps } from './grpc-service.js';

/*
 * TorchServe's gRPC APIs (proto/torchserve/inference.proto and management.proto, TorchServe's own),
 * each on its port as in TorchServe (7070, 7071). Every RPC does what its HTTP route does
 * (http/inference-api.ts, http/management-api.ts): the same registry, batchers, checks and snapshot,
 * and the management RPCs answer `msg` with the JSON body the HTTP route sends.
 */

const INFERENCE_SERVICE = 'org.pytorch.serve.grpc.inference.InferenceAPIsService';
const MANAGEMENT_SERVICE = 'org.pytorch.serve.grpc.management.ManagementAPIsService';

export interface PredictionsRequestMessage {
  model_name?: string;
  model_version?: string;
  input?: Record<string, Buffer>;
  sequenceId?: string;
}

/** TorchServe's gRPC APIs, each undefined when off. */
export interface TorchServeGrpcApis {
  inference: GrpcApi | undefined;
  management: GrpcApi | undefined;
  close(drainedBy: number): Promise<void>;
}

/** Starts those of TorchServe's gRPC APIs whose address is set; none started, when one cannot listen. */
export async function startTorchServeGrpcApis(deps: GrpcServiceDeps, log: ServerLog): Promise<TorchServeGrpcApis> {
  const { config } = deps;
  const { grpc, service } = await loadGrpc(['torchserve/inference.proto', 'torchserve/management.proto']);
  const status = statusOf(grpc, log);
  const tokenOf = (api: 'inference' | 'management') =>
    config.token !== undefined && config.authApis.includes(api) ? config.token : undefined;

  const start = async (
    address: string,
    definition: Grpc.ServiceDefinition,
    implementation: Grpc.UntypedServiceImplementation,
    api: 'inference' | 'management',
    token: string | undefined,
  ): Promise<GrpcApi> => {
    const server = new grpc.Server({ 'grpc.max_receive_message_length': config.maxRequestSizeBytes });
    server.addService(definition, implementation);
    const bound = await listenGrpc(grpc, server, address, {
      label: `torchserve grpc ${api} API`,
      flag: `--ts-grpc-${api}-address`,
      token,
      log,
    });
    return { address: bound, close: (drainedBy) => drainGrpc(server, new Set(), drainedBy) };
  };

  let inference: GrpcApi | undefined;
  let management: GrpcApi | undefined;
  if (config.tsGrpcInferenceAddress !== undefined) {
    const token = tokenOf('inference');
    // --health-auth off opens Ping, as it opens GET /ping.
    const denied = tokenCheck(token, new Set(config.healthAuth ? [] : ['Ping']));
    const rpcs = inferenceRpcs(deps);
    const inferMethods = ['Predictions', 'StreamPredictions'];
    const { definition, sizeOf } = measured(service(INFERENCE_SERVICE), inferMethods);
    const observe = grpcObserver(deps, 'torchserve-grpc');
    const unary = unaryHandler(
      denied,
      status,
      observe === undefined ? undefined : { service: INFERENCE_SERVICE, methods: new Set(inferMethods), record: observe, sizeOf },
    );
    const streamPredictions: Grpc.handleServerStreamingCall<PredictionsRequestMessage, object> = (call) => {
      const started = performance.now();
      const notes: CallNotes = {};
      const record = (error: KilnError | undefined, response?: object) =>
        observe?.({
          path: `/${INFERENCE_SERVICE}/StreamPredictions`,
          peer: call.getPeer(),
          started,
          notes,
          error,
          bytesIn: sizeOf(call.request),
          bytesOut: sizeOf(response),
        });
      const refused = denied('StreamPredictions', call.metadata);
      if (refused !== undefined) {
        call.emit('error', status(refused));
        return record(refused);
      }
      const gone = { aborted: false };
      call.once('cancelled', () => (gone.aborted = true));
      // A Kiln handler answers once: the stream carries that one answer, as TorchServe's does for a
      // handler that does not stream.
      rpcs.Predictions(call.request, gone, notes).then(
        (response) => {
          if (gone.aborted) return;
          call.write(response);
          call.end();
          record(undefined, response);
        },
        (error: unknown) => {
          const kiln = toKilnError(error);
          call.emit('error', status(kiln));
          record(kiln);
        },
      );
    };
    inference = await start(
      config.tsGrpcInferenceAddress,
      definition,
      { Ping: unary('Ping', rpcs.Ping), Predictions: unary('Predictions', rpcs.Predictions), StreamPredictions: streamPredictions },
      'inference',
      token,
    );
  }
  if (config.tsGrpcManagementAddress !== undefined) {
    const token = tokenOf('management');
    const unary = unaryHandler(tokenCheck(token, new Set()), status);
    const rpcs = managementRpcs(deps);
    const implementation: Grpc.UntypedServiceImplementation = {};
    for (const [method, rpc] of Object.entries(rpcs)) implementation[method] = unary(method, rpc as (request: object) => Promise<object>);
    try {
      management = await start(config.tsGrpcManagementAddress, service(MANAGEMENT_SERVICE), implementation, 'management', token);
    } catch (error) {
      await inference?.close(Date.now());
      throw error;
    }
  }
  return {
    inference,
    management,
    close: async (drainedBy) => {
      await Promise.all([inference?.close(drainedBy), management?.close(drainedBy)]);
    },
  };
}

/** Ping, and Predictions as POST /predictions/{model}[/{version}] does it. */
export function inferenceRpcs(deps: GrpcServiceDeps) {
  const { inference } = deps;
  return {
    // GET /ping's body; TorchServe too answers an unhealthy server with OK and says so in `health`.
    Ping: async () => {
      const problems = healthProblems(inference);
      return { health: JSON.stringify(problems.length > 0 ? { status: 'Unhealthy', problems } : { status: 'Healthy' }) };
    },
    Predictions: async (request: PredictionsRequestMessage, gone: ClientGone, notes: CallNotes) => {
      if (inference.closing()) throw serverError('KILN_ERR_SHUTTING_DOWN', 'the server is shutting down and takes no new requests');
      const model = inference.registry.resolve(required(request.model_name, 'model_name'), request.model_version || undefined);
      notes.version = model;
      notes.trace = {};
      const wire = toWireRequest(request);
      notes.requestId = wire.id;
      const result = await model.submit(wire, gone, notes.trace);
      inference.onResult?.(model, result, wire.id);
      if (!result.ok) {
        reported.add(result.error);
        throw result.error;
      }
      const { data } = renderBody(result.body);
      const prediction = typeof data === 'string' ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
      checkResponseSize(prediction.byteLength, inference.maxResponseSizeBytes, model);
      return { prediction };
    },
  };
}

/**
 * The `input` map as the handler's request: each entry a field, as a multipart form's are over HTTP
 * (TorchServe's handlers see the map as one request's fields); a single entry (TorchServe's clients
 * send `data`) is the body as well, as a raw POST body is.
 */
export function toWireRequest(request: PredictionsRequestMessage): WireRequest {
  const entries = Object.entries(request.input ?? {});
  return {
    id: randomUUID(),
    body: entries.length === 1 ? entries[0]![1] : new Uint8Array(),
    contentType: undefined,
    headers: {},
    query: {},
    fields: Object.fromEntries(entries.map(([name, data]) => [name, { data, contentType: undefined, filename: undefined }])),
  };
}

/** TorchServe's management RPCs, by method name: each answers `msg`, its HTTP route's body as JSON. */
export function managementRpcs(deps: GrpcServiceDeps) {
  const { service } = deps;
  const msg = (answer: ManagementAnswer) => ({ msg: JSON.stringify(answer.body) });
  return {
    // As TorchServe's: a limit of 0 (unset) or out of 1..100 lists 100.
    ListModels: async (request: { limit?: number; next_page_token?: number }) => {
      const limit = request.limit !== undefined && request.limit >= 1 && request.limit <= 100 ? request.limit : 100;
      return msg({ code: 200, body: listModels(service, limit, Math.max(0, request.next_page_token ?? 0)) });
    },
    DescribeModel: async (request: { model_name?: string; model_version?: string; customized?: boolean }) =>
      msg({
        code: 200,
        body: await describeModel(
          service,
          required(request.model_name, 'model_name'),
          request.model_version || undefined,
          request.customized === true,
          randomUUID(),
        ),
      }),
    // proto3 cannot tell 0 from unset: 0 (or "") is the default, as in TorchServe's gRPC API.
    RegisterModel: async (request: {
      url?: string;
      model_name?: string;
      batch_size?: number;
      max_batch_delay?: number;
      initial_workers?: number;
      response_timeout?: number;
      synchronous?: boolean;
      handler?: string;
      runtime?: string;
      s3_sse_kms?: boolean;
      queue_timeout?: number;
    }) => {
      requireModelApiOf(service, 'gRPC');
      if (request.runtime && request.runtime !== 'node')
        throw serverError(
          'KILN_ERR_INVALID_PARAMETER',
          `Parameter runtime must be node: Kiln's archives run on Node, received "${request.runtime}"`,
        );
      if (request.s3_sse_kms === true)
        throw serverError(
          'KILN_ERR_INVALID_PARAMETER',
          'Parameter s3_sse_kms cannot be used: Kiln registers archives from the model store or allowedUrls',
        );
      if (request.queue_timeout)
        throw serverError(
          'KILN_ERR_INVALID_PARAMETER',
          'Parameter queue_timeout cannot be used: Kiln has no per-request queue timeout; leave it 0',
        );
      return msg(
        await registerModel(service, {
          url: request.url || undefined,
          model_name: request.model_name || undefined,
          handler: request.handler || undefined,
          batch_size: count(request.batch_size, 'batch_size', 1),
          max_batch_delay: count(request.max_batch_delay, 'max_batch_delay', 0),
          initial_workers: count(request.initial_workers, 'initial_workers', 0, MAX_WORKERS),
          response_timeout: count(request.response_timeout, 'response_timeout', 1),
          synchronous: request.synchronous === true,
        }),
      );
    },
    // As TorchServe's: min_worker 0 is 1, max_worker 0 is min_worker, timeout 0 is -1 (no limit); number_gpu is not used.
    ScaleWorker: async (request: {
      model_name?: string;
      model_version?: string;
      min_worker?: number;
      max_worker?: number;
      synchronous?: boolean;
      timeout?: number;
    }) => {
      const model = service.registry.resolve(required(request.model_name, 'model_name'), request.model_version || undefined);
      const min = count(request.min_worker, 'min_worker', 0, MAX_WORKERS) ?? 1;
      const max = count(request.max_worker, 'max_worker', 0, MAX_WORKERS) ?? min;
      const timeout = request.timeout || -1;
      if (timeout < -1) throw serverError('KILN_ERR_INVALID_PARAMETER', `Parameter timeout must be -1 or more, received ${timeout}`);
      return msg(await scaleModel(service, model, min, max, request.synchronous === true, timeout));
    },
    SetDefault: async (request: { model_name?: string; model_version?: string }) =>
      msg(await setDefaultVersion(service, required(request.model_name, 'model_name'), required(request.model_version, 'model_version'))),
    UnregisterModel: async (request: { model_name?: string; model_version?: string }) => {
      requireModelApiOf(service, 'gRPC');
      return msg(await unregisterModel(service, required(request.model_name, 'model_name'), request.model_version || undefined));
    },
  };
}

/** A string field that must be given: proto3 sends a missing one as "". */
function required(value: string | undefined, field: string): string {
  if (!value) throw serverError('KILN_ERR_INVALID_PARAMETER', `Parameter ${field} is required`);
  return value;
}

/** An int32 field: undefined when 0 (proto3's unset); otherwise within minimum..maximum. */
function count(value: number | undefined, field: string, minimum: number, maximum = 2 ** 31 - 1): number | undefined {
  if (!value) return undefined;
  if (value < minimum || value > maximum)
    throw serverError('KILN_ERR_INVALID_PARAMETER', `Parameter ${field} must be ${minimum} to ${maximum}, received ${value}`);
  return value;
}
