import { sdkError } from '../errors/kiln-error.js';
import type { KilnRequest } from '../handler/types.js';
import type { LoadedModel } from './load-model.js';
import type { WireRequest, WireResult } from '../runtime/wire.js';
import { failed, fromWireRequest, toWireResult } from './wire-convert.js';

/**
 * Runs one batch through a loaded handler, as a server worker does, and returns one result per
 * request, in order. Nothing a handler does makes this throw: a failure is the result of the
 * requests it touched.
 */
export async function runBatch(model: LoadedModel, batch: readonly WireRequest[]): Promise<WireResult[]> {
  const results: WireResult[] = new Array(batch.length);
  const requests: KilnRequest[] = [];
  const positions: number[] = [];
  batch.forEach((wire, index) => {
    try {
      requests.push(fromWireRequest(wire));
      positions.push(index);
    } catch (error) {
      results[index] = failed(error, 'decode');
    }
  });
  if (requests.length === 0) return results;

  const timings = model.context.timings;
  timings.preprocess = timings.inference = timings.postprocess = 0;
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
    return results;
  }
  positions.forEach((index, i) => (results[index] = toWireResult(answers[i])));
  return results;
}
