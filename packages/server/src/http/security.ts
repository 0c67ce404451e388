import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { KilnError } from '@kiln/handler-sdk/errors';
import cors from '@fastify/cors';
import { serverError } from '../errors.js';

/** Compares two tokens in constant time (hashing first makes the lengths equal too). */
export function tokensMatch(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/**
 * Requires `Authorization: Bearer <token>` on every route of an API. A failure is 401 (TorchServe
 * answers 400) with a `WWW-Authenticate` header, in the error shape of the route's protocol.
 */
export function requireToken(
  app: FastifyInstance,
  token: string,
  send: (url: string, reply: FastifyReply, error: KilnError) => unknown,
): void {
  app.addHook('onRequest', async (request, reply) => {
    const header = request.headers.authorization;
    const given = typeof header === 'string' ? /^bearer\s+(.+)$/i.exec(header)?.[1]?.trim() : undefined;
    if (given !== undefined && tokensMatch(given, token)) return;
    reply.header('www-authenticate', 'Bearer realm="kiln"');
    const error = serverError(
      'KILN_ERR_UNAUTHORIZED',
      given === undefined
        ? 'this API needs a token: send Authorization: Bearer <token>'
        : 'the token in Authorization: Bearer does not match',
    );
    await send(request.url, reply, error);
    return reply;
  });
}

/** CORS only for the configured origins; with none configured, no CORS headers are sent at all. */
export async function allowOrigins(app: FastifyInstance, origins: readonly string[]): Promise<void> {
  if (origins.length === 0) return;
  await app.register(cors, {
    origin: origins.includes('*') ? '*' : [...origins],
    methods: ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS'],
    // Browsers may read these: the binary extension's header length and the request id.
    exposedHeaders: ['inference-header-content-length', 'x-request-id', 'retry-after'],
  });
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

export function isLoopback(host: string): boolean {
  return LOOPBACK.test(host);
}
