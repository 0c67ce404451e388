import type { FastifyInstance } from 'fastify';
import { KilnError, sdkError } from '@kiln/handler-sdk/errors';
import { renderBody, type WireRequest } from '@kiln/handler-sdk/runtime';
import { serverError } from '../errors.js';
import { nestedDeeperThan, tooDeep } from '../http/json-depth.js';
import { kserveScope } from '../http/create-app.js';
import { checkResponseSize, submit, type InferenceDeps } from '../http/inference-api.js';
import { toWireRequest } from '../http/wire-request.js';
import { refuseWithoutExplain } from '../http/explanations-api.js';
import { instanceBody } from './v1-instances.js';

/**
 * KServe v1: `{"instances": [...]}` → `{"predictions": [...]}`, or with `:explain` the handler's
 * explain() → `{"explanations": [...]}`. Each instance is one request to the handler (its JSON body,
 * or the bytes of a base64 instance: v1-instances.ts), so instances batch with each other and with
 * other traffic. Its routes throw; their scope's error handler answers in KServe's shape.
 */
export function v1Api(app: FastifyInstance, deps: InferenceDeps): void {
  kserveScope(app, { maxRequestSizeBytes: deps.maxRequestSizeBytes ?? Infinity, onServerError: deps.onServerError }, (scope) =>
    v1Routes(scope, deps),
  );
}

function v1Routes(app: FastifyInstance, deps: InferenceDeps): void {
  app.get('/v1/models', async () => ({ models: deps.registry.names() }));
  app.get<{ Params: { model: string } }>('/v1/models/:model', async (request, reply) => {
    const model = deps.registry.resolve(request.params.model);
    const { ready } = model.health();
    return reply.code(ready ? 200 : 503).send({ name: model.name, ready });
  });
  // `/v1/models/{name}:predict` and `:explain`: the colon is part of one path segment, so the route
  // takes the whole segment and splits it.
  app.post<{ Params: { target: string } }>('/v1/models/:target', { config: { inference: 'v1' } }, async (request, reply) => {
    const match = /^(.+):(predict|explain)$/.exec(request.params.target);
    if (match === null) {
      throw serverError(
        'KILN_ERR_ROUTE_NOT_FOUND',
        `POST /v1/models/${request.params.target}: the v1 routes are /v1/models/{name}:predict and /v1/models/{name}:explain`,
      );
    }
    const model = deps.registry.resolve(match[1]!);
    const explain = match[2] === 'explain';
    if (explain) refuseWithoutExplain(model);
    let instances: unknown;
    try {
      instances = JSON.parse((request.body as Buffer | undefined)?.toString('utf8') ?? '');
    } catch {
      instances = undefined;
    }
    const list = (instances as { instances?: unknown } | undefined)?.instances;
    if (!Array.isArray(list)) throw sdkError('KILN_ERR_BAD_REQUEST', 'expected a JSON body {"instances": [...]}');
    if (nestedDeeperThan(instances)) throw tooDeep('the JSON body');
    // All instances are queued, or none: never half a request run and the rest refused.
    const { jobQueueSize } = model.config;
    if (list.length > jobQueueSize) {
      throw sdkError(
        'KILN_ERR_BAD_REQUEST',
        `${list.length} instances are more than model "${model.name}" queues at once (jobQueueSize ${jobQueueSize}); send at most ${jobQueueSize} per request`,
      );
    }
    if (list.length > model.queueRoom) {
      throw serverError(
        'KILN_ERR_QUEUE_FULL',
        `model "${model.name}" has room for ${model.queueRoom} more requests (jobQueueSize ${jobQueueSize}), fewer than the ${list.length} instances sent; none was queued; retry shortly`,
      );
    }
    const base = await toWireRequest(request, deps.hiddenHeaders, deps.maxRequestSizeBytes);
    // Every instance is turned into its body first: a bad one refuses the request before any is queued.
    const bodies = list.map(instanceBody);
    const results = await Promise.all(
      bodies.map((body, i) => {
        const wire: WireRequest = { ...base, id: `${request.id}-${i}`, ...body };
        if (explain) wire.hook = 'explain';
        return submit(model, wire, reply, deps);
      }),
    );
    const answers = results.map((result, i) => {
      // The first instance that failed fails the request, named.
      if (!result.ok) throw new KilnError(result.error.code, `instance ${i}: ${result.error.message}`, { cause: result.error });
      const { contentType, data } = renderBody(result.body);
      if (typeof data === 'string') return data;
      // Text (a handler that returned a string) is a JSON string; other bytes are base64.
      return JSON.stringify(Buffer.from(data).toString(contentType.startsWith('text/') ? 'utf8' : 'base64'));
    });
    const body = `{"${explain ? 'explanations' : 'predictions'}":[${answers.join(',')}]}`;
    checkResponseSize(Buffer.byteLength(body), deps.maxResponseSizeBytes, model);
    return reply.type('application/json').send(body);
  });
}
