import type { FastifyInstance } from 'fastify';
import { serverError } from '../errors.js';
import { submit, type InferenceDeps } from '../http/inference-api.js';
import { toWireRequest } from '../http/wire-request.js';
import { renderBody } from '@kiln/handler-sdk/runtime';
import { sendV2Error } from '../http/create-app.js';

/**
 * KServe v1: `{"instances": [...]}` → `{"predictions": [...]}`. Each instance is one request to the
 * handler (its JSON body), so instances batch with each other and with other traffic.
 */
export function v1Api(app: FastifyInstance, deps: InferenceDeps): void {
  app.get('/v1/models', async () => ({ models: deps.registry.names() }));
  app.get<{ Params: { model: string } }>('/v1/models/:model', async (request, reply) => {
    try {
      const model = deps.registry.resolve(request.params.model);
      const { ready } = model.health();
      return reply.code(ready ? 200 : 503).send({ name: model.name, ready });
    } catch (error) {
      return sendV2Error(reply, error as never);
    }
  });
  // `/v1/models/{name}:predict`: the colon is part of one path segment, so the route takes the
  // whole segment and splits it.
  app.post<{ Params: { target: string } }>('/v1/models/:target', async (request, reply) => {
    const match = /^(.+):predict$/.exec(request.params.target);
    if (match === null) {
      return sendV2Error(reply, serverError('KILN_ERR_ROUTE_NOT_FOUND', `POST /v1/models/${request.params.target}: the v1 route is /v1/models/{name}:predict`));
    }
    let model;
    try {
      model = deps.registry.resolve(match[1]!);
    } catch (error) {
      return sendV2Error(reply, error as never);
    }
    let instances: unknown;
    try {
      instances = JSON.parse((request.body as Buffer | undefined)?.toString('utf8') ?? '');
    } catch {
      instances = undefined;
    }
    const list = (instances as { instances?: unknown } | undefined)?.instances;
    if (!Array.isArray(list)) return sendV2Error(reply, { code: 'KILN_ERR_BAD_REQUEST', status: 400, message: 'expected a JSON body {"instances": [...]}' });
    const base = await toWireRequest(request, deps.hiddenHeaders, deps.maxRequestSizeBytes);
    const results = await Promise.all(
      list.map((instance, i) => submit(model, { ...base, id: `${request.id}-${i}`, body: Buffer.from(JSON.stringify(instance)), contentType: 'application/json' }, reply, deps)),
    );
    const failed = results.findIndex((r) => !r.ok);
    if (failed !== -1) {
      const { error } = results[failed] as { error: { code: string; status: number; message: string } };
      return sendV2Error(reply, { ...error, message: `instance ${failed}: ${error.message}` });
    }
    const predictions = results.map((r) => {
      const { data } = renderBody((r as { body: Parameters<typeof renderBody>[0] }).body);
      return typeof data === 'string' ? data : JSON.stringify(Buffer.from(data).toString('base64'));
    });
    return reply.type('application/json').send(`{"predictions":[${predictions.join(',')}]}`);
  });
}
