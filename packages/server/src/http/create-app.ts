import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import swagger from '@fastify/swagger';
import { SERVER_VERSION } from '../version.js';
import { toKilnError, type KilnError } from '@kiln/handler-sdk/errors';
import { serverError } from '../errors.js';
import { errorBody, v2ErrorBody } from './error-body.js';

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
}

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
    // verbose: validation errors carry the value received, so messages can quote it.
    ajv: { customOptions: { verbose: true } },
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
  if (options.jsonBodies === true)
    app.addContentTypeParser('application/json', { parseAs: 'string' }, app.getDefaultJsonParser('error', 'error'));
  else app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  app.addHook('onSend', async (_request, reply) => {
    if (options.closing?.() === true) reply.header('connection', 'close');
  });
  // Routes throw KilnErrors; this is where an error becomes a body. KServe routes register their
  // own handler (kserveScope) for their shape.
  app.setErrorHandler((error, request, reply) => sendError(reply, fromFramework(error, request, options.maxRequestSizeBytes)));
  // The OpenAPI description is built from the same route schemas that validate requests.
  await app.register(swagger, { openapi: { openapi: '3.0.3', info: { title: options.title, version: SERVER_VERSION } } });
  const describe = async () => app.swagger();
  app.get('/openapi.json', { schema: { hide: true } }, describe);
  app.route({ method: 'OPTIONS', url: '/', schema: { hide: true }, handler: describe });
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

/** `query parameter min_worker must be integer, received "abc"`: the parameter, the rule, the value. */
function invalidParameter(
  error: { instancePath: string; message?: string; params: Record<string, unknown>; data?: unknown },
  dataVar: string,
) {
  const where = dataVar === 'querystring' ? 'query parameter' : dataVar === 'params' ? 'path parameter' : `${dataVar} field`;
  const name =
    error.instancePath.replace(/^\//, '').replace(/\//g, '.') ||
    String(error.params.missingProperty ?? error.params.additionalProperty ?? '');
  const received = error.params.missingProperty === undefined && error.data !== undefined ? `, received ${JSON.stringify(error.data)}` : '';
  return serverError('KILN_ERR_INVALID_PARAMETER', `${where} ${name} ${error.message ?? 'is invalid'}${received}`);
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

/** Answers an error in TorchServe's shape `{code, type, message}`, with Kiln's `errorCode`. */
export function sendError(reply: FastifyReply, error: KilnError): FastifyReply {
  if (error.status === 503) reply.header('retry-after', '1');
  return reply
    .code(error.status)
    .type('application/json')
    .send(JSON.stringify(errorBody(error)));
}

/** Answers an error in KServe's shape `{"error": "..."}`, with Kiln's `errorCode`. */
export function sendV2Error(reply: FastifyReply, error: KilnError): FastifyReply {
  if (error.status === 503) reply.header('retry-after', '1');
  return reply
    .code(error.status)
    .type('application/json')
    .send(JSON.stringify(v2ErrorBody(error)));
}

/** Registers KServe routes in a scope of their own, whose error handler answers the same errors in KServe's shape. */
export function kserveScope(app: FastifyInstance, maxRequestSizeBytes: number, routes: (scope: FastifyInstance) => void): void {
  void app.register(async (scope) => {
    scope.setErrorHandler((error, request, reply) => sendV2Error(reply, fromFramework(error, request, maxRequestSizeBytes)));
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
