import type { FastifyInstance } from 'fastify';
import type { ServerMetrics } from '../observability/server-metrics.js';

/**
 * GET /metrics: Prometheus text. `?name[]=a&name[]=b` (TorchServe's filter; `name=a` works too)
 * keeps only the families named; names that do not exist are skipped.
 */
export function metricsApi(app: FastifyInstance, metrics: ServerMetrics): void {
  app.get<{ Querystring: Record<string, string | string[] | undefined> }>('/metrics', async (request, reply) => {
    const query = request.query;
    const names = [query['name[]'], query.name].flat().filter((n): n is string => typeof n === 'string' && n !== '');
    return reply.type(metrics.contentType).send(await metrics.render(names));
  });
}
