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
 * Requires the token on every route of an API: `Authorization: Bearer <token>`, or Basic with the
 * token as the password (any user name), which is what a browser sends for the status page once
 * it has asked for it. A failure is 401 (TorchServe answers 400), with both challenges in
 * `WWW-Authenticate`, in the error shape of the route's protocol.
 */
export function requireToken(
  app: FastifyInstance,
  token: string,
  send: (url: string, reply: FastifyReply, error: KilnError) => unknown,
  open: ReadonlySet<string> = new Set(),
): void {
  app.addHook('onRequest', async (request, reply) => {
    if (open.size > 0 && open.has(request.url.split('?')[0]!.replace(/(.)\/+$/, '$1'))) return;
    const given = presentedToken(request.headers.authorization);
    if (given !== undefined && tokensMatch(given, token)) return;
    reply.header('www-authenticate', 'Bearer realm="kiln", Basic realm="kiln", charset="UTF-8"');
    const error = serverError(
      'KILN_ERR_UNAUTHORIZED',
      given === undefined
        ? 'this API needs a token: send Authorization: Bearer <token> (a browser may give it as the password)'
        : 'the token in Authorization does not match',
    );
    await send(request.url, reply, error);
    return reply;
  });
}

/** The token in `Bearer <token>`, or the password in `Basic base64(user:password)`. */
function presentedToken(header: string | undefined): string | undefined {
  if (typeof header !== 'string') return undefined;
  const bearer = /^bearer\s+(.+)$/i.exec(header)?.[1]?.trim();
  if (bearer !== undefined) return bearer;
  const basic = /^basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header)?.[1];
  if (basic === undefined) return undefined;
  const decoded = Buffer.from(basic, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon === -1 ? undefined : decoded.slice(colon + 1);
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

/** The routes --health-auth off leaves open: what probes call. */
export const HEALTH_ROUTES: ReadonlySet<string> = new Set(['/ping', '/v2/health/live', '/v2/health/ready']);

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

export function isLoopback(host: string): boolean {
  return LOOPBACK.test(host);
}
