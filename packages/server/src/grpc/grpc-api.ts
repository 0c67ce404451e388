import { fileURLToPath } from 'node:url';
import type * as Grpc from '@grpc/grpc-js';
import { toKilnError, type KilnError } from '@kiln/handler-sdk/errors';
import { serverError } from '../errors.js';
import { isLoopback, tokensMatch } from '../http/security.js';
import type { ServerLog } from '../observability/logs.js';
import type { InferRequestMessage, InferResponseMessage } from './grpc-codec.js';
import type { ClientGone } from '../batching/batcher.js';
import { grpcObserver, measured, type CallNotes, type ObservedCall } from './grpc-observe.js';
import { infer, reported, unaryRpcs, type GrpcServiceDeps } from './grpc-service.js';
import { GRPC_CODES, GRPC_STATUS_OF } from './grpc-status.js';

/**
 * The .protos ship in the package (packages/server/proto, beside src/ and dist/), so this path holds
 * from a source module and from a built one alike; each is named from there.
 */
export const PROTO_DIR = fileURLToPath(new URL('../../proto/', import.meta.url));
export const PROTO_FILE = 'grpc_service.proto';
const SERVICE = 'inference.GRPCInferenceService';

/** How proto-loader gives messages to the RPCs: the .proto's field names, int64 as numbers, empty lists present. */
export const LOAD_OPTIONS = { keepCase: true, longs: Number, enums: String, defaults: false, arrays: true, objects: true, oneofs: true };

export interface GrpcApi {
  /** `host:port`, the port bound (port 0 resolves to a real one). */
  address: string;
  /**
   * Drains: takes no new calls, ends each open stream once its requests are answered, waits for the
   * calls in flight until `drainedBy` (epoch ms), then cuts whatever is left.
   */
  close(drainedBy: number): Promise<void>;
}

/** gRPC's libraries, imported when a gRPC API starts, never on the way to the HTTP APIs. */
export type GrpcJs = typeof import('@grpc/grpc-js');

/** @grpc/grpc-js, and the services of `protos` (under packages/server/proto), by full name. */
export async function loadGrpc(protos: string[]): Promise<{ grpc: GrpcJs; service: (name: string) => Grpc.ServiceDefinition }> {
  const [grpc, loader] = await Promise.all([import('@grpc/grpc-js'), import('@grpc/proto-loader')]);
  const definition = await loader.load(protos, { ...LOAD_OPTIONS, includeDirs: [PROTO_DIR] });
  return { grpc, service: (name) => definition[name] as Grpc.ServiceDefinition };
}

/** Why a call is refused by the token, or undefined: `open` methods never need it. */
export function tokenCheck(token: string | undefined, open: ReadonlySet<string>) {
  return (method: string, metadata: Grpc.Metadata): KilnError | undefined => {
    if (token === undefined || open.has(method)) return undefined;
    const header = metadata.get('authorization')[0];
    const given = typeof header === 'string' ? /^bearer\s+(.+)$/i.exec(header)?.[1]?.trim() : undefined;
    if (given !== undefined && tokensMatch(given, token)) return undefined;
    return serverError(
      'KILN_ERR_UNAUTHORIZED',
      given === undefined
        ? 'this API needs a token: send the metadata authorization: Bearer <token>'
        : 'the token in the authorization metadata does not match',
    );
  };
}

/** Kiln's error as a gRPC status: the mapped code, Kiln's message, and its code in `kiln-error-code`. */
export function statusOf(grpc: GrpcJs, log: ServerLog) {
  return (error: unknown): Partial<Grpc.StatusObject> => {
    const kiln = toKilnError(error);
    // Results' failures were logged with their model (serve.ts onResult); anything else at 5xx here.
    if (kiln.status >= 500 && kiln.status !== 503 && !reported.has(kiln))
      log.error(`grpc call failed: ${kiln.code}: ${kiln.stack ?? kiln.message}`);
    const metadata = new grpc.Metadata();
    metadata.set('kiln-error-code', kiln.code);
    return { code: GRPC_CODES[GRPC_STATUS_OF[kiln.code]], details: kiln.message, metadata };
  };
}

/** What a gRPC API counts and logs of its inference calls (grpc-observe.ts). */
export interface CallBooks {
  /** The service's full name, for the access log's path. */
  service: string;
  /** The methods counted: the inference ones. */
  methods: ReadonlySet<string>;
  record: (call: ObservedCall) => void;
  sizeOf: (message: unknown) => number;
}

/** A unary RPC as the APIs write it: `gone` is set when the client cancels; `notes` is what the books read. */
export type UnaryRpc<Request> = (request: Request, gone: ClientGone, notes: CallNotes) => Promise<object>;

/**
 * Unary RPCs checked by `denied`, their failures answered by `status`; the `books` methods are
 * counted and logged once their status is sent, refusals included.
 */
export function unaryHandler(
  denied: (method: string, metadata: Grpc.Metadata) => KilnError | undefined,
  status: (error: unknown) => Partial<Grpc.StatusObject>,
  books?: CallBooks,
) {
  return <Request>(method: string, rpc: UnaryRpc<Request>): Grpc.handleUnaryCall<Request, object> =>
    (call, callback) => {
      const started = performance.now();
      const notes: CallNotes = {};
      const record =
        books !== undefined && books.methods.has(method)
          ? (error: KilnError | undefined, response?: object) =>
              books.record({
                path: `/${books.service}/${method}`,
                peer: call.getPeer(),
                started,
                notes,
                error,
                bytesIn: books.sizeOf(call.request),
                bytesOut: books.sizeOf(response),
              })
          : undefined;
      const refused = denied(method, call.metadata);
      if (refused !== undefined) {
        callback(status(refused));
        return record?.(refused);
      }
      const gone = { aborted: false };
      call.once('cancelled', () => (gone.aborted = true));
      rpc(call.request, gone, notes).then(
        (response) => {
          callback(null, response);
          record?.(undefined, response);
        },
        (error: unknown) => {
          const kiln = toKilnError(error);
          callback(status(kiln));
          record?.(kiln);
        },
      );
    };
}

/**
 * Binds `server` to `address` and logs `<label> listening on host:port` (with a warning when it is
 * beyond this machine with no token); answers the address bound. `flag` is the option that sets it.
 */
export async function listenGrpc(
  grpc: GrpcJs,
  server: Grpc.Server,
  address: string,
  { label, flag, token, log }: { label: string; flag: string; token: string | undefined; log: ServerLog },
): Promise<string> {
  const { host } = parseGrpcAddress(address);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
  ).catch((error: Error) => {
    server.forceShutdown();
    throw serverError(
      'KILN_ERR_SERVER_CONFIG_INVALID',
      `the ${label} cannot listen on ${address}: ${/EADDRINUSE|address already in use/i.test(error.message) ? 'the address is in use' : error.message}; choose another ${flag}, or turn it off with ${flag} off`,
    );
  });
  const actual = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  log.info(`${label} listening on ${actual}${token !== undefined ? ' (token required)' : ''}`);
  if (!isLoopback(host) && token === undefined) {
    log.warn(
      `WARNING: the ${label} listens on ${host}, beyond this machine, with no token. Anyone who can reach it can run your models. Set --token-file (or KILN_TOKEN), or bind to 127.0.0.1.`,
    );
  }
  return actual;
}

/**
 * Drains `server`: no new calls; `streams` (each ends itself once answered) are told to settle; the
 * calls in flight have until `drainedBy` (epoch ms), then whatever is left is cut.
 */
export async function drainGrpc(server: Grpc.Server, streams: ReadonlySet<() => void>, drainedBy: number): Promise<void> {
  const shutdown = new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  for (const settle of [...streams]) settle(); // idle streams end now, busy ones when answered
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(0, drainedBy - Date.now()))));
  await Promise.race([shutdown, late]);
  clearTimeout(timer);
  server.forceShutdown();
}

/**
 * Starts inference.GRPCInferenceService on `config.grpcAddress`. @grpc/grpc-js and
 * @grpc/proto-loader are imported here, when the gRPC API starts, never on the way to the HTTP APIs.
 */
export async function startGrpcApi(deps: GrpcServiceDeps, log: ServerLog): Promise<GrpcApi> {
  const { config, inference } = deps;
  const loaded = await loadGrpc([PROTO_FILE]);
  const { grpc } = loaded;
  const inferMethods = ['ModelInfer', 'ModelStreamInfer'];
  const { definition: service, sizeOf } = measured(loaded.service(SERVICE), inferMethods);
  const observe = grpcObserver(deps, 'v2-grpc');
  const books = observe === undefined ? undefined : { service: SERVICE, methods: new Set(inferMethods), record: observe, sizeOf };

  const token = config.token !== undefined && config.authApis.includes('inference') ? config.token : undefined;
  // --health-auth off opens what probes call, as over HTTP (/v2/health/live and /ready).
  const denied = tokenCheck(token, new Set(config.healthAuth ? [] : ['ServerLive', 'ServerReady']));
  const status = statusOf(grpc, log);
  const unary = unaryHandler(denied, status, books);

  /** Open streams: each ends itself once the server is closing and its requests are answered. */
  const streams = new Set<() => void>();
  const streamInfer: Grpc.handleBidiStreamingCall<InferRequestMessage, object> = (call) => {
    const refused = denied('ModelStreamInfer', call.metadata);
    if (refused !== undefined) {
      call.emit('error', status(refused));
      return;
    }
    const gone = { aborted: false };
    let pending = 0;
    let ended = false;
    let finished = false;
    const finish = (error?: KilnError) => {
      if (finished) return;
      finished = true;
      streams.delete(settle);
      if (error === undefined) call.end();
      else call.emit('error', status(error));
    };
    const settle = () => {
      if (pending > 0) return;
      if (ended) finish();
      else if (inference.closing())
        finish(
          serverError(
            'KILN_ERR_SHUTTING_DOWN',
            'the server is shutting down: its requests are answered and the stream is closed; open another',
          ),
        );
    };
    streams.add(settle);
    // Requests run as they arrive (one stream's requests can share a batch); each answer is written
    // when it is ready and names its request by id.
    call.on('data', (message: InferRequestMessage) => {
      pending++;
      const started = performance.now();
      const notes: CallNotes = {};
      let failed: KilnError | undefined;
      infer(inference, message, gone, notes)
        .then(
          (response) => ({ error_message: '', infer_response: response }),
          (error: unknown) => {
            const kiln = toKilnError(error);
            failed = kiln;
            status(kiln); // logged as a unary call's would be
            const named: InferResponseMessage = {
              model_name: message.model_name ?? '',
              model_version: message.model_version ?? '',
              id: message.id ?? '',
              outputs: [],
              raw_output_contents: [],
              parameters: { kiln_error_code: { string_param: kiln.code } },
            };
            return { error_message: kiln.message, infer_response: named };
          },
        )
        .then((response) => {
          if (!finished && !gone.aborted) call.write(response);
          // Each request of a stream is counted and logged as a ModelInfer is, with the stream's path.
          observe?.({
            path: `/${SERVICE}/ModelStreamInfer`,
            peer: call.getPeer(),
            started,
            notes,
            error: failed,
            bytesIn: sizeOf(message),
            bytesOut: sizeOf(response),
          });
          pending--;
          settle();
        });
    });
    call.on('end', () => {
      ended = true;
      settle();
    });
    call.once('cancelled', () => {
      gone.aborted = true;
      finished = true;
      streams.delete(settle);
    });
  };

  const rpcs = unaryRpcs(deps);
  const implementation: Grpc.UntypedServiceImplementation = {
    ServerLive: unary('ServerLive', rpcs.ServerLive),
    ServerReady: unary('ServerReady', rpcs.ServerReady),
    ModelReady: unary('ModelReady', rpcs.ModelReady),
    ServerMetadata: unary('ServerMetadata', rpcs.ServerMetadata),
    ModelMetadata: unary('ModelMetadata', rpcs.ModelMetadata),
    ModelInfer: unary('ModelInfer', rpcs.ModelInfer),
    ModelStreamInfer: streamInfer,
    ModelConfig: unary('ModelConfig', rpcs.ModelConfig),
    ModelStatistics: unary('ModelStatistics', rpcs.ModelStatistics),
    RepositoryIndex: unary('RepositoryIndex', rpcs.RepositoryIndex),
  };

  // The request limit is gRPC's own receive limit: a larger message is RESOURCE_EXHAUSTED.
  const server = new grpc.Server({ 'grpc.max_receive_message_length': config.maxRequestSizeBytes });
  server.addService(service, implementation);
  const address = await listenGrpc(grpc, server, config.grpcAddress!, { label: 'grpc API', flag: '--grpc-address', token, log });
  return { address, close: (drainedBy) => drainGrpc(server, streams, drainedBy) };
}

/** `127.0.0.1:8085` or `[::1]:8085` → host and port. */
export function parseGrpcAddress(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(':');
  return { host: address.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(address.slice(at + 1)) };
}
