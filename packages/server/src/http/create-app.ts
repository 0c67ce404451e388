import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { createRequire } from 'node:module';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import swagger from '@fastify/swagger';
import { SERVER_VERSION } from '../version.js';
import { toKilnError, type KilnError } from '@kiln/handler-sdk/errors';
import { serverError } from '../errors.js';
import { errorBody, v2ErrorBody } from './error-body.js';
import { nestedDeeperThan, tooDeep } from './json-depth.js';
import { docsUi } from './docs-ui.js';
import { notesOf } from './observe-requests.js';

export interface AppOptions {
  /** Title of the API's OpenAPI description. */
  title: string;
  maxRequestSizeBytes: number;
  requestTimeoutMs: number;
  headersTimeoutMs: number;
  /** While the server drains, responses ask clients to close their connection. */
  closing?: () => boolean;
  /** Parse application/json bodies (the management API); other APIs keep every body as raw bytes. */
  jsonBodies?: boolean;
  /** Told of every 5xx other than 503 that an error handler answers, to log it with its stack. */
  onServerError?: ServerErrorReporter;
}

/** Logs a server-side error answered to a client; `request` says which. */
export type ServerErrorReporter = (error: KilnError, request: FastifyRequest) => void;

const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

type Compilers = NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>;
type Factory<K extends keyof Compilers> = NonNullable<Compilers[K]>;
/** fastify's own schema compilers, resolved from fastify itself (they are its dependencies, not ours). */
const fromFastify = createRequire(createRequire(import.meta.url).resolve('fastify'));

/**
 * fastify's schema compilers (ajv, fast-json-stringify), loaded when a route first needs one
 * rather than when an app is made: the inference API has no schema to compile, and comes up about
 * 75 ms sooner; the management API loads them when it is built, after the inference API listens.
 */
const lazyCompilers: Compilers = {
  buildValidator: (...args: Parameters<Factory<'buildValidator'>>) =>
    (fromFastify('@fastify/ajv-compiler') as () => Factory<'buildValidator'>)()(...args),
  buildSerializer: (...args: Parameters<Factory<'buildSerializer'>>) =>
    (fromFastify('@fastify/fast-json-stringify-compiler') as () => Factory<'buildSerializer'>)()(...args),
};

/**
 * A fastify instance with what every Kiln API shares: bodies kept as raw bytes (handlers decide
 * what they mean), an `x-request-id` on every response, Node's timeouts set explicitly, and
 * errors in TorchServe's `{code, type, message}` shape with Kiln's `errorCode`.
 */
export async function createApp(options: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger: false,
    // `DELETE /models/m/` is `DELETE /models/m`, as in TorchServe: scripts build paths with slashes.
    routerOptions: { ignoreTrailingSlash: true },
    // Node checks headersTimeout and requestTimeout only this often (30 s unless told): often enough
    // that a slow client is cut off within its setting, not up to half a minute later.
    http: { connectionsCheckingInterval: checkingInterval(options) },
    // Requests fastify refuses before any route (bad percent-encoding, an overlong segment), and
    // ones Node refuses before fastify sees them: Kiln's shape and codes, not the frameworks'.
    frameworkErrors: (error, request, reply) => sendErrorFor(request.url, reply, frameworkError(error, request.url)),
    clientErrorHandler: answerClientError,
    // verbose: validation errors carry the value received, so messages can quote it.
    // removeAdditional off: a schema that forbids unknown parameters refuses them (400), never drops them.
    ajv: { customOptions: { verbose: true, removeAdditional: false } },
    schemaController: { compilersFactory: lazyCompilers },
    schemaErrorFormatter: (errors, dataVar) => invalidParameter(errors[0]!, dataVar),
    bodyLimit: options.maxRequestSizeBytes,
    requestTimeout: options.requestTimeoutMs,
    forceCloseConnections: 'idle',
    return503OnClosing: false,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
  });
  app.server.headersTimeout = options.headersTimeoutMs;
  app.removeAllContentTypeParsers();
  if (options.jsonBodies === true) {
    const parseJson = app.getDefaultJsonParser('error', 'error');
    app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) =>
      parseJson(request, body.toString(), (error, value) => {
        // Checked before schema validation, which recurses: a body nested 200,000 deep is a 400.
        if (error === null && nestedDeeperThan(value)) done(tooDeep('the JSON body'), undefined);
        else done(error, value);
      }),
    );
  } else app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  // The management API reads an empty parameter (`?limit=&next_page_token=`) as absent, so its
  // default applies, as TorchServe does; before validation, which would refuse "" as a number.
  if (options.jsonBodies === true) {
    app.addHook('preValidation', async (request) => {
      const query = request.query as Record<string, unknown>;
      for (const key of Object.keys(query)) if (query[key] === '') delete query[key];
    });
  }
  app.addHook('onSend', async (_request, reply) => {
    if (options.closing?.() === true) reply.header('connection', 'close');
  });
  // Routes throw KilnErrors; this is where an error becomes a body. KServe routes register their
  // own handler (kserveScope) for their shape.
  app.setErrorHandler((error, request, reply) => sendError(reply, answerable(error, request, options)));
  // The OpenAPI description is built from the same route schemas that validate requests.
  await app.register(swagger, { openapi: { openapi: '3.0.3', info: { title: options.title, version: SERVER_VERSION } } });
  // Swagger UI at /docs, from the same description, built on first use (docs-ui.ts).
  docsUi(app);
  const describe = async () => app.swagger();
  app.get('/openapi.json', { schema: { hide: true } }, describe);
  // TorchServe's two ways to ask for it, on every API: `OPTIONS /` and `/api-description`.
  app.route({ method: 'OPTIONS', url: '/', schema: { hide: true }, handler: describe });
  app.route({ method: ['GET', 'OPTIONS'], url: '/api-description', schema: { hide: true }, handler: describe });
  app.setNotFoundHandler((request, reply) =>
    sendErrorFor(
      request.url,
      reply,
      serverError(
        'KILN_ERR_ROUTE_NOT_FOUND',
        `Requested resource is not found, please refer to API document: ${request.method} ${request.url.split('?')[0]}`,
      ),
    ),
  );
  return app;
}

/** How often Node looks for connections past their timeouts: a quarter of the shortest, within 0.1–1 s. */
function checkingInterval(options: AppOptions): number {
  return Math.min(1_000, Math.max(100, Math.floor(Math.min(options.headersTimeoutMs, options.requestTimeoutMs) / 4)));
}

/** fastify's refusals of a path, as Kiln errors. */
function frameworkError(error: { code?: string }, url: string): KilnError {
  const path = url.split('?')[0]!.slice(0, 200);
  if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    return serverError(
      'KILN_ERR_URI_TOO_LONG',
      `a segment of the path ${path}… is longer than 100 characters; model names and versions are shorter`,
    );
  }
  if (error.code === 'FST_ERR_BAD_URL') {
    return serverError(
      'KILN_ERR_BAD_HTTP',
      `the path ${path} is not valid percent-encoding (a % must be followed by two hex digits of UTF-8)`,
    );
  }
  return toKilnError(error);
}

/**
 * Answers what Node refuses before any route runs (headers too large, a timeout, malformed HTTP)
 * in TorchServe's shape with a Kiln code, then closes the connection, as Node itself would.
 */
function answerClientError(error: Error & { code?: string }, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const refusal =
    error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? serverError(
          'KILN_ERR_REQUEST_TIMEOUT',
          'the request was not received in time (headersTimeout for its headers, requestTimeout for all of it)',
        )
      : error.code === 'HPE_HEADER_OVERFLOW'
        ? serverError('KILN_ERR_HEADERS_TOO_LARGE', "the request's headers are larger than 16 KiB; send fewer or shorter headers")
        : serverError('KILN_ERR_BAD_HTTP', `the request is not valid HTTP (${error.code ?? error.message})`);
  const body = JSON.stringify(errorBody(refusal));
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${refusal.status} ${STATUS_CODES[refusal.status]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

/** `query parameter min_worker must be integer, received "abc"`: the parameter, the rule, the value. */
function invalidParameter(
  error: { instancePath: string; message?: string; params: Record<string, unknown>; data?: unknown; parentSchema?: unknown },
  dataVar: string,
) {
  const where = dataVar === 'querystring' ? 'query parameter' : dataVar === 'params' ? 'path parameter' : `${dataVar} field`;
  const name =
    error.instancePath.replace(/^\//, '').replace(/\//g, '.') ||
    String(error.params.missingProperty ?? error.params.additionalProperty ?? '');
  if (error.params.additionalProperty !== undefined) {
    // An unknown parameter: name the ones the route takes, rather than echo the whole object.
    const known = Object.keys((error.parentSchema as { properties?: object } | undefined)?.properties ?? {});
    return serverError('KILN_ERR_INVALID_PARAMETER', `${where} ${name} is not one this route takes; it takes ${known.join(', ')}`);
  }
  const allowed = Array.isArray(error.params.allowedValues) ? ` (${error.params.allowedValues.join(', ')})` : '';
  const received = error.params.missingProperty === undefined && error.data !== undefined ? `, received ${JSON.stringify(error.data)}` : '';
  return serverError('KILN_ERR_INVALID_PARAMETER', `${where} ${name} ${error.message ?? 'is invalid'}${allowed}${received}`);
}

/** What a route threw, as the KilnError to answer; a server-side one is reported first. */
function answerable(
  error: unknown,
  request: FastifyRequest,
  options: Pick<AppOptions, 'maxRequestSizeBytes' | 'onServerError'>,
): KilnError {
  const answer = fromFramework(error, request, options.maxRequestSizeBytes);
  if (answer.status >= 500 && answer.status !== 503) options.onServerError?.(answer, request);
  return answer;
}

/**
 * What fastify or a route threw, as a KilnError: fastify's own errors for a body that is too large
 * or of a content type the API does not take get their codes; see toKilnError for the rest.
 */
function fromFramework(error: unknown, request: FastifyRequest, maxRequestSizeBytes: number): KilnError {
  const code = (error as { code?: unknown }).code;
  if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return serverError(
      'KILN_ERR_REQUEST_TOO_LARGE',
      `the request body is larger than maxRequestSize (${maxRequestSizeBytes} bytes); send a smaller body or raise --max-request-size`,
    );
  }
  if (code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    return serverError(
      'KILN_ERR_UNSUPPORTED_MEDIA_TYPE',
      `this API takes application/json bodies (or query parameters), received ${request.headers['content-type'] ?? 'no content type'}`,
    );
  }
  return toKilnError(error);
}

/** A body refused as too large is still read, and thrown away, up to this much before the connection is cut. */
const DISCARD_LIMIT_BYTES = 64 * 1024 * 1024;

/** What every error answer does first: Retry-After on a 503; the rest of a too-large body read and dropped. */
function beforeError(reply: FastifyReply, error: KilnError): void {
  notesOf(reply.request).errorCode = error.code; // for the access log and kiln_requests_total
  if (error.status === 503) reply.header('retry-after', '1');
  if (error.code === 'KILN_ERR_REQUEST_TOO_LARGE') discardBody(reply);
}

/**
 * Reads the rest of a body that will not be used, so that the 413 reaches a client still sending:
 * closing a socket with unread bytes makes TCP reset it, and the client loses the answer (EPIPE
 * instead of a 413). The connection stays open while the body arrives, within requestTimeout,
 * and is cut once DISCARD_LIMIT_BYTES more have come.
 */
function discardBody(reply: FastifyReply): void {
  const raw = reply.request.raw;
  if (raw.complete || raw.destroyed) return;
  reply.removeHeader('connection'); // fastify asks to close at once; the body is drained instead
  let discarded = 0;
  raw.on('data', (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > DISCARD_LIMIT_BYTES) raw.socket.destroy();
  });
  raw.resume();
}

/** Answers an error in TorchServe's shape `{code, type, message}`, with Kiln's `errorCode`. */
export function sendError(reply: FastifyReply, error: KilnError): FastifyReply {
  beforeError(reply, error);
  return reply
    .code(error.status)
    .type('application/json')
    .send(JSON.stringify(errorBody(error)));
}

/** Answers an error in KServe's shape `{"error": "..."}`, with Kiln's `errorCode`. */
export function sendV2Error(reply: FastifyReply, error: KilnError): FastifyReply {
  beforeError(reply, error);
  return reply
    .code(error.status)
    .type('application/json')
    .send(JSON.stringify(v2ErrorBody(error)));
}

/** Registers KServe routes in a scope of their own, whose error handler answers the same errors in KServe's shape. */
export function kserveScope(
  app: FastifyInstance,
  options: Pick<AppOptions, 'maxRequestSizeBytes' | 'onServerError'>,
  routes: (scope: FastifyInstance) => void,
): void {
  void app.register(async (scope) => {
    scope.setErrorHandler((error, request, reply) => sendV2Error(reply, answerable(error, request, options)));
    routes(scope);
  });
}

const KSERVE_PATH = /^\/v[12](?:[/?]|$)/;

/**
 * For answers outside any route (no route matched, a hook refused the request): KServe's shape
 * under /v1 and /v2, TorchServe's elsewhere.
 */
export function sendErrorFor(url: string, reply: FastifyReply, error: KilnError): FastifyReply {
  return KSERVE_PATH.test(url) ? sendV2Error(reply, error) : sendError(reply, error);
}

/** Answers 405 for the other methods of a path, naming the ones it takes. */
export function methodNotAllowed(app: FastifyInstance, url: string, allowed: string[]): void {
  const all = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH'];
  app.route({
    method: all.filter((m) => !allowed.includes(m)),
    url,
    schema: { hide: true },
    handler: (request, reply) => {
      reply.header('allow', allowed.join(', '));
      return sendError(
        reply,
        serverError(
          'KILN_ERR_METHOD_NOT_ALLOWED',
          `Requested method is not allowed, please refer to API document: ${request.method} ${request.url.split('?')[0]} takes ${allowed.join(', ')}`,
        ),
      );
    },
  });
}
