import { randomUUID } from 'node:crypto';
import type * as Grpc from '@grpc/grpc-js';
import type { KilnError } from '@kiln/handler-sdk/errors';
import type { RequestTrace } from '../batching/batcher.js';
import type { AccessRecord } from '../observability/access-record.js';
import type { ServerMetrics } from '../observability/server-metrics.js';
import type { ModelVersion } from '../registry/model-version.js';
import { GRPC_CODES, GRPC_STATUS_OF } from './grpc-status.js';

/*
 * gRPC's inference calls in the same books as HTTP's (http/observe-requests.ts): each is counted in
 * kiln_requests_total (and TorchServe's RequestsNXX), timed into its model's histograms and Triton's
 * statistics when it reached the model, and written to the access log. `status` is the HTTP status
 * the same outcome gets over HTTP, so that one dashboard reads both; the access log also gives the
 * gRPC code the client got.
 */

/** The `api` label of a gRPC API's inference calls. */
export type GrpcApiLabel = 'v2-grpc' | 'torchserve-grpc';

/** What a call learned on its way: the version that queued it, and its queue wait and batch. */
export interface CallNotes {
  /** The id the handler saw and the server's log names; one is made for a call refused before. */
  requestId?: string;
  version?: ModelVersion;
  trace?: RequestTrace;
}

export interface ObserveDeps {
  metrics?: ServerMetrics | undefined;
  accessLog?: ((record: AccessRecord) => void) | undefined;
}

/** One call, once its status is sent. */
export interface ObservedCall {
  /** `/package.Service/Method`. */
  path: string;
  /** grpc-js's peer, `host:port`. */
  peer: string;
  started: number;
  notes: CallNotes;
  error: KilnError | undefined;
  bytesIn: number;
  bytesOut: number;
}

/** Records a gRPC API's inference calls; undefined when there are neither metrics nor an access log. */
export function grpcObserver(deps: ObserveDeps, api: GrpcApiLabel): ((call: ObservedCall) => void) | undefined {
  const { metrics, accessLog } = deps;
  if (metrics === undefined && accessLog === undefined) return undefined;
  return ({ path, peer, started, notes, error, bytesIn, bytesOut }) => {
    const ms = performance.now() - started;
    const status = error?.status ?? 200;
    const version = notes.version;
    metrics?.answered({
      api,
      status,
      errorCode: error?.code ?? '',
      model: version?.measured,
      labels: version === undefined ? undefined : { name: version.name, version: version.version },
      reachedModel: notes.trace !== undefined,
      seconds: ms / 1000,
    });
    accessLog?.({
      requestId: notes.requestId ?? randomUUID(),
      remoteAddress: peerHost(peer),
      method: 'GRPC',
      path,
      model: version?.name,
      version: version?.version,
      status,
      grpcStatus: error === undefined ? GRPC_CODES.OK : GRPC_CODES[GRPC_STATUS_OF[error.code]],
      errorCode: error?.code,
      bytesIn,
      bytesOut,
      queueMs: notes.trace?.queueMs === undefined ? undefined : round(notes.trace.queueMs),
      batchSize: notes.trace?.batchSize,
      totalMs: round(ms),
    });
  };
}

/** `127.0.0.1:5000`, `[::1]:5000` or `ipv4:…` → the host alone, as the HTTP access log gives it. */
export function peerHost(peer: string): string {
  const bare = peer.replace(/^ipv[46]:/, '');
  return /^\[(.*)\]:\d+$/.exec(bare)?.[1] ?? /^([^:]*):\d+$/.exec(bare)?.[1] ?? bare;
}

const round = (ms: number) => Math.round(ms * 1000) / 1000;

/**
 * The byte size of each message a service's `methods` take and give, kept beside the message
 * object: a copy of `definition` whose (de)serializers note it. grpc-js serializes an answer when it
 * is sent, so the size is known once the callback has returned.
 */
export function measured(
  definition: Grpc.ServiceDefinition,
  methods: readonly string[],
): { definition: Grpc.ServiceDefinition; sizeOf: (message: unknown) => number } {
  const sizes = new WeakMap<object, number>();
  const copy: Record<string, Grpc.MethodDefinition<object, object>> = { ...definition };
  for (const method of methods) {
    const original = definition[method];
    if (original === undefined) continue;
    copy[method] = {
      ...original,
      requestDeserialize: (bytes: Buffer) => {
        const message = original.requestDeserialize(bytes) as object;
        sizes.set(message, bytes.byteLength);
        return message;
      },
      responseSerialize: (message: object) => {
        const bytes = original.responseSerialize(message);
        sizes.set(message, bytes.byteLength);
        return bytes;
      },
    };
  }
  return { definition: copy, sizeOf: (message) => (typeof message === 'object' && message !== null ? (sizes.get(message) ?? 0) : 0) };
}
