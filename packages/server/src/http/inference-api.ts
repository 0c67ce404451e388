import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { renderBody, type Result, type WireRequest } from '@kiln/handler-sdk/runtime';
import { serverError } from '../errors.js';
import type { ModelVersion } from '../registry/model-version.js';
import type { ModelRegistry } from '../registry/registry.js';
import { methodNotAllowed, type ServerErrorReporter } from './create-app.js';
import { notesOf } from './observe-requests.js';
import { toWireRequest } from './wire-request.js';

export interface InferenceDeps {
  registry: ModelRegistry;
  /** True once shutdown has begun: new requests get 503. */
  closing: () => boolean;
  onResult?: (version: ModelVersion, result: Result, requestId: string) => void;
  /** Request headers handlers must not see. */
  hiddenHeaders?: readonly string[];
  /** The whole request's size limit, multipart parts added up. */
  maxRequestSizeBytes?: number;
  /** The largest answer body sent; a larger one is a 500. */
  maxResponseSizeBytes?: number;
  /** Why the server is not healthy beyond its models' states: loads pending, archives refused at start. */
  startupProblems?: () => string[];
  /** --allow-partial-start: a model given at start that failed to load does not make the server unhealthy. */
  allowPartialStart?: boolean;
  /** Logs a 5xx answered to a client (the v1 and v2 routes answer in a scope of their own). */
  onServerError?: ServerErrorReporter;
}

/** TorchServe's inference API: GET /ping and POST /predictions/{model}[/{version}]. */
export function inferenceApi(app: FastifyInstance, deps: InferenceDeps): void {
  app.get('/ping', async (_request, reply) => {
    const problems = healthProblems(deps);
    if (problems.length > 0) return reply.code(500).send({ status: 'Unhealthy', problems });
    return { status: 'Healthy' };
  });

  const predict = async (request: FastifyRequest<{ Params: { model: string; version?: string } }>, reply: FastifyReply) => {
    const version = deps.registry.resolve(request.params.model, request.params.version);
    return predictOn(version, request, reply, deps);
  };
  // PUT too: `curl -T file` sends PUT, and TorchServe's route takes it.
  for (const url of ['/predictions/:model', '/predictions/:model/:version']) {
    app.route({ method: ['POST', 'PUT'], url, handler: predict, config: { inference: 'torchserve' } });
    methodNotAllowed(app, url, ['POST', 'PUT']);
  }
  methodNotAllowed(app, '/ping', ['GET']);
}

/**
 * Why the server is not healthy, one line each; none when it is. `/ping` and `/v2/health/ready` both
 * answer from this: the server is shutting down; a model given at start is still loading or was
 * refused; a registered version is loading or failed. A version being unregistered is not a problem.
 */
export function healthProblems(deps: InferenceDeps): string[] {
  return [
    ...(deps.closing() ? ['the server is shutting down'] : []),
    ...(deps.startupProblems?.() ?? []),
    ...deps.registry
      .all()
      .filter((m) => m.state.kind === 'failed' || m.state.kind === 'loading')
      .filter((m) => !(deps.allowPartialStart === true && m.failedAtStart))
      .map((m) => `${m.name} ${m.version}: ${m.health().reason}`),
  ];
}

/** Queues one request on a model and writes its result, whatever it is. */
export async function predictOn(
  version: ModelVersion,
  request: FastifyRequest,
  reply: FastifyReply,
  deps: InferenceDeps,
): Promise<FastifyReply> {
  const result = await submit(version, await toWireRequest(request, deps.hiddenHeaders, deps.maxRequestSizeBytes), reply, deps);
  return sendResult(reply, result, version, deps.maxResponseSizeBytes);
}

/** Refuses an answer of `bytes` over the limit: it is the handler's mistake, and it is not sent. */
export function checkResponseSize(bytes: number, limit: number | undefined, version: ModelVersion): void {
  if (limit === undefined || bytes <= limit) return;
  throw serverError(
    'KILN_ERR_RESPONSE_TOO_LARGE',
    `the answer of model "${version.name}" is ${bytes} bytes, more than maxResponseSize (${limit} bytes); return less, or raise --max-response-size`,
  );
}

/**
 * What every inference route does once it has a request for a model: refuse when the server is
 * draining, queue it on the version (which refuses when not ready; a request whose client
 * disconnects is dropped before it runs), record the result.
 */
export async function submit(version: ModelVersion, wire: WireRequest, reply: FastifyReply, deps: InferenceDeps): Promise<Result> {
  if (deps.closing())
    return { ok: false, error: serverError('KILN_ERR_SHUTTING_DOWN', 'the server is shutting down and takes no new requests') };
  const gone = { aborted: false };
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) gone.aborted = true;
  });
  // What the access log and the metrics read once the answer is sent (http/observe-requests.ts).
  const notes = notesOf(reply.request);
  notes.version = version;
  notes.trace = {};
  const result = await version.submit(wire, gone, notes.trace);
  deps.onResult?.(version, result, wire.id);
  return result;
}

/** Writes a result; a failure, or an answer over `maxResponseSizeBytes`, is thrown for the API's error handler. */
export function sendResult(reply: FastifyReply, result: Result, version: ModelVersion, maxResponseSizeBytes?: number): FastifyReply {
  if (!result.ok) throw result.error;
  const { contentType, data } = renderBody(result.body);
  checkResponseSize(typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength, maxResponseSizeBytes, version);
  reply.code(result.status).headers(result.headers);
  return reply.type(contentType).send(typeof data === 'string' ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength));
}
