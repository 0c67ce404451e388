import { sdkError } from '../errors/kiln-error.js';
import type { KilnRequest } from '../handler/types.js';
import type { LoadedModel } from './load-model.js';
import type { WireRequest, WireResult } from '../runtime/wire.js';
import { runHooks } from './run-hooks.js';
import { failed, fromWireRequest, toWireResult } from './wire-convert.js';

/**
 * Runs one batch through a loaded handler, as a server worker does, and returns one result per
 * request, in order. Nothing a handler does makes this throw: a failure is the result of the
 * requests it touched.
 *
 * Explain and describe requests share the queue and batches with predictions; here they leave the
 * batch for their own hooks (run-hooks.ts), after handle() has answered the predictions. A
 * prediction pays one field test for it (`hook`).
 */
export async function runBatch(model: LoadedModel, batch: readonly WireRequest[]): Promise<WireResult[]> {
  const results: WireResult[] = new Array(batch.length);
  const requests: KilnRequest[] = [];
  const positions: number[] = [];
  let hooked: number[] | undefined;
  batch.forEach((wire, index) => {
    if (wire.hook !== undefined) {
      (hooked ??= []).push(index);
      return;
    }
    try {
      requests.push(fromWireRequest(wire));
      positions.push(index);
    } catch (error) {
      results[index] = failed(error, 'decode');
    }
  });

  const timings = model.context.timings;
  timings.preprocess = timings.inference = timings.postprocess = 0;
  if (requests.length > 0) await runHandle(model, requests, positions, results);
  if (hooked !== undefined) await runHooks(model, batch, hooked, results);
  return results;
}

/** handle() over the batch's predictions; each answer lands at its request's position. */
async function runHandle(model: LoadedModel, requests: KilnRequest[], positions: number[], results: WireResult[]): Promise<void> {
  let answers: unknown[];
  try {
    answers = await model.handler.handle(requests, model.context);
    if (!Array.isArray(answers) || answers.length !== requests.length) {
      throw sdkError(
        'KILN_ERR_HANDLER_FAILED',
        `handle() must return one result per request: it got ${requests.length} requests and returned ${Array.isArray(answers) ? `${answers.length} results` : typeof answers}`,
      );
    }
  } catch (error) {
    positions.forEach((index) => (results[index] = failed(error, 'handle')));
    return;
  }
  positions.forEach((index, i) => (results[index] = toWireResult(answers[i])));
}
