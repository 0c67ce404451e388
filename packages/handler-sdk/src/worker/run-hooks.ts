import { sdkError } from '../errors/kiln-error.js';
import type { KilnRequest } from '../handler/types.js';
import { noDescribeHook, noExplainHook } from '../runtime/hooks.js';
import { toWireError, type WireRequest, type WireResult } from '../runtime/wire.js';
import type { LoadedModel } from './load-model.js';
import { failed, fromWireRequest, toJsonValue, toWireResult } from './wire-convert.js';

/**
 * Answers the requests of a batch that name a hook (`WireRequest.hook`): the explain requests
 * together, in one explain() call, as handle() gets the predictions; each describe request with a
 * describe() call. A handler without the hook answers KILN_ERR_NOT_IMPLEMENTED.
 */
export async function runHooks(model: LoadedModel, batch: readonly WireRequest[], indices: number[], results: WireResult[]): Promise<void> {
  const { handler, context } = model;
  const explain: KilnRequest[] = [];
  const positions: number[] = [];
  for (const index of indices) {
    const wire = batch[index]!;
    if (wire.hook === 'describe') {
      results[index] = await describe(model);
      continue;
    }
    if (handler.explain === undefined) {
      results[index] = { ok: false, error: toWireError(noExplainHook(context.modelName, context.modelVersion)) };
      continue;
    }
    try {
      explain.push(fromWireRequest(wire));
      positions.push(index);
    } catch (error) {
      results[index] = failed(error, 'decode');
    }
  }
  if (explain.length === 0) return;
  let answers: unknown[];
  try {
    answers = await handler.explain!(explain, context);
    if (!Array.isArray(answers) || answers.length !== explain.length) {
      throw sdkError(
        'KILN_ERR_HANDLER_FAILED',
        `explain() must return one result per request: it got ${explain.length} requests and returned ${Array.isArray(answers) ? `${answers.length} results` : typeof answers}`,
      );
    }
  } catch (error) {
    for (const index of positions) results[index] = failed(error, 'explain');
    return;
  }
  positions.forEach((index, i) => {
    const answer = answers[i];
    results[index] = answer instanceof Error ? failed(answer, 'explain') : toWireResult(answer);
  });
}

/** describe()'s metadata as a JSON result: TorchServe's customizedMetadata is a JSON object, so it must be one. */
async function describe({ handler, context }: LoadedModel): Promise<WireResult> {
  if (handler.describe === undefined) return { ok: false, error: toWireError(noDescribeHook(context.modelName, context.modelVersion)) };
  try {
    const metadata: unknown = await handler.describe(context);
    if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata) || ArrayBuffer.isView(metadata)) {
      const got =
        metadata === null ? 'null' : Array.isArray(metadata) ? 'an array' : ArrayBuffer.isView(metadata) ? 'bytes' : typeof metadata;
      throw new TypeError(`describe() must return a JSON object (TorchServe's customizedMetadata is one), it returned ${got}`);
    }
    const text = JSON.stringify(toJsonValue(metadata));
    return { ok: true, status: 200, headers: {}, body: { kind: 'json', text } };
  } catch (error) {
    return failed(error, 'describe');
  }
}
