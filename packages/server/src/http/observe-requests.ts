import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { RequestTrace } from '../batching/batcher.js';
import type { AccessRecord } from '../observability/access-record.js';
import type { ServerMetrics } from '../observability/server-metrics.js';
import type { ModelVersion } from '../registry/model-version.js';
import type { ModelRegistry } from '../registry/registry.js';

/** The inference routes, by the API they belong to: the ones kiln_requests_total counts. */
export type InferenceRoute = 'torchserve' | 'v2' | 'v1';

/** What a request learned on its way, for its metrics and its access-log line. */
export interface RequestNotes {
  /** The version that took it into its queue. */
  version?: ModelVersion;
  trace?: RequestTrace;
  /** The Kiln error code it was answered with. */
  errorCode?: string;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Set on the inference routes (predictions, v2 infer, v1 predict). */
    inference?: InferenceRoute;
  }
  interface FastifyRequest {
    kiln: RequestNotes | null;
  }
}

export interface ObserveOptions {
  /** Counts the inference routes' requests (the inference API only). */
  metrics?: ServerMetrics | undefined;
  registry?: ModelRegistry | undefined;
  accessLog?: ((record: AccessRecord) => void) | undefined;
}

/** The notes of a request, made on first use. */
export function notesOf(request: FastifyRequest): RequestNotes {
  return (request.kiln ??= {});
}

/**
 * Hooks an app's responses: every request gets an access-log line (when there is an access log),
 * and a request on an inference route is counted in kiln_requests_total, whether it was answered,
 * refused before the queue (401, 404, 413, 503) or failed, and timed end to end when it reached a
 * model. Runs after the answer is sent, off the request's path.
 */
export function observeRequests(app: FastifyInstance, options: ObserveOptions): void {
  const { metrics, registry, accessLog } = options;
  app.decorateRequest('kiln', null);
  if (metrics === undefined && accessLog === undefined) return;
  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.config.inference;
    const notes = request.kiln;
    const version = notes?.version ?? (route === undefined ? undefined : namedVersion(request, route, registry));
    if (route !== undefined && metrics !== undefined) {
      metrics.answered({
        api: route,
        status: reply.statusCode,
        errorCode: notes?.errorCode ?? '',
        model: version?.measured,
        labels: version === undefined ? undefined : { name: version.name, version: version.version },
        reachedModel: notes?.trace !== undefined,
        seconds: reply.elapsedTime / 1000,
      });
    }
    if (accessLog !== undefined) accessLog(accessRecord(request, reply, version));
    done();
  });
}

function accessRecord(request: FastifyRequest, reply: FastifyReply, version: ModelVersion | undefined): AccessRecord {
  const trace = request.kiln?.trace;
  const url = request.url;
  const query = url.indexOf('?');
  return {
    requestId: request.id,
    remoteAddress: request.ip,
    method: request.method,
    // The path without its query: a query may carry what a log should not keep.
    path: query === -1 ? url : url.slice(0, query),
    model: version?.name,
    version: version?.version,
    status: reply.statusCode,
    errorCode: request.kiln?.errorCode,
    bytesIn: byteCount(request.headers['content-length']),
    bytesOut: byteCount(reply.getHeader('content-length')),
    queueMs: trace?.queueMs === undefined ? undefined : round(trace.queueMs),
    batchSize: trace?.batchSize,
    totalMs: round(reply.elapsedTime),
  };
}

const round = (ms: number) => Math.round(ms * 1000) / 1000;

function byteCount(header: unknown): number {
  const n = Number(Array.isArray(header) ? header[0] : header);
  return Number.isFinite(n) && n >= 0 ? n : 0;
}

/**
 * The registered version a refused request's path named, so that a 413 or a 503 is counted
 * against its model. A name or version that is not registered is counted with empty labels:
 * clients choose the path, and each made-up one must not become a series of its own.
 */
function namedVersion(request: FastifyRequest, route: InferenceRoute, registry: ModelRegistry | undefined): ModelVersion | undefined {
  if (registry === undefined) return undefined;
  const params = request.params as { model?: string; version?: string; target?: string };
  // v1's path is /v1/models/{name}:predict, one parameter.
  const name = route === 'v1' ? params.target?.split(':')[0] : params.model;
  if (name === undefined) return undefined;
  try {
    return registry.resolve(name, params.version);
  } catch {
    return undefined;
  }
}
