import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { noExplainHook } from '@kiln/handler-sdk/runtime';
import type { ModelVersion } from '../registry/model-version.js';
import { methodNotAllowed } from './create-app.js';
import { sendResult, submit, type InferenceDeps } from './inference-api.js';
import { toWireRequest } from './wire-request.js';

/**
 * TorchServe's `POST /explanations/{model}[/{version}]`: the request goes through the model's queue
 * and batches like a prediction, marked for the handler's explain() (WireRequest.hook), and its
 * answer is sent as the handler gave it, as TorchServe sends explain_handle's.
 */
export function explanationsApi(app: FastifyInstance, deps: InferenceDeps): void {
  const explain = async (request: FastifyRequest<{ Params: { model: string; version?: string } }>, reply: FastifyReply) => {
    const version = deps.registry.resolve(request.params.model, request.params.version);
    refuseWithoutExplain(version);
    const wire = await toWireRequest(request, deps.hiddenHeaders, deps.maxRequestSizeBytes);
    wire.hook = 'explain';
    return sendResult(reply, await submit(version, wire, reply, deps), version, deps.maxResponseSizeBytes);
  };
  // PUT too, as on /predictions: TorchServe serves both paths with the same handler.
  for (const url of ['/explanations/:model', '/explanations/:model/:version']) {
    app.route({ method: ['POST', 'PUT'], url, handler: explain, config: { inference: 'torchserve' } });
    methodNotAllowed(app, url, ['POST', 'PUT']);
  }
}

/**
 * 501 at once when a worker has reported that the handler has no explain(). Before any worker has
 * loaded (workers that start on demand) the request is queued, and the worker answers the same 501.
 */
export function refuseWithoutExplain(version: ModelVersion): void {
  if (version.hooks?.explain === false) throw noExplainHook(version.name, version.version);
}
