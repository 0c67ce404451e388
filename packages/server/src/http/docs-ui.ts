import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/** Headers of the inner app's answers that the outer reply sets itself. */
const HOP_HEADERS = new Set(['content-length', 'connection', 'transfer-encoding', 'date', 'keep-alive']);

/**
 * Swagger UI at /docs, built on first use. Registering @fastify/swagger-ui (and @fastify/static under
 * it) while an API starts cost about 70 ms, before the inference API could listen; here the routes
 * are two cheap handlers, and the first visit builds a small app of its own that serves the UI from
 * this API's OpenAPI description, answered through inject(). Everything it serves ships in the
 * package: no CDN. The API's own hooks (the token, the access log) run as for any route.
 */
export function docsUi(app: FastifyInstance): void {
  let inner: Promise<FastifyInstance> | undefined;
  const build = async (): Promise<FastifyInstance> => {
    const [{ default: Fastify }, { default: swagger }, { default: swaggerUi }] = await Promise.all([
      import('fastify'),
      import('@fastify/swagger'),
      import('@fastify/swagger-ui'),
    ]);
    const docs = Fastify({ logger: false });
    // The UI's own description is replaced by this API's (transformSpecification).
    await docs.register(swagger, { openapi: { openapi: '3.0.3' } });
    await docs.register(swaggerUi, {
      routePrefix: '/docs',
      staticCSP: true,
      transformSpecification: () => app.swagger(),
      transformSpecificationClone: false,
    });
    await docs.ready();
    return docs;
  };
  const forward = async (request: FastifyRequest, reply: FastifyReply) => {
    inner ??= build().catch((error: unknown) => {
      inner = undefined; // a failed build is tried again on the next visit
      throw error;
    });
    const answer = await (
      await inner
    ).inject({
      method: 'GET',
      url: request.url,
      headers: { accept: request.headers.accept ?? '*/*' },
    });
    for (const [name, value] of Object.entries(answer.headers)) {
      if (value !== undefined && !HOP_HEADERS.has(name)) reply.header(name, value);
    }
    return reply.code(answer.statusCode).send(answer.rawPayload);
  };
  app.get('/docs', { schema: { hide: true } }, forward);
  app.get('/docs/*', { schema: { hide: true } }, forward);
}
