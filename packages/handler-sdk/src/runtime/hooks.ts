import { sdkError, type KilnError } from '../errors/kiln-error.js';
import type { Handler } from '../handler/types.js';

/*
 * The optional hooks a handler may have besides handle(): `explain` and `describe`. A worker reports
 * which ones its handler has when it loads (the `ready` message), so the server refuses a route
 * whose hook is missing at once, without a round trip; the worker refuses it too, for a request
 * that got there before any worker had loaded.
 */

/** Which optional hooks a handler has. */
export interface HandlerHooks {
  explain: boolean;
  describe: boolean;
}

export function handlerHooks(handler: Handler): HandlerHooks {
  return { explain: typeof handler.explain === 'function', describe: typeof handler.describe === 'function' };
}

/** 501 for an explain request to a handler without explain(): says which model, and how to add it. */
export function noExplainHook(modelName: string, modelVersion: string): KilnError {
  return sdkError(
    'KILN_ERR_NOT_IMPLEMENTED',
    `model "${modelName}" version ${modelVersion} cannot explain: its handler exports no explain() hook; add a method explain(requests, context) to the handler that returns one explanation per request (see docs/reference/handler-sdk.md#explain-and-describe), then archive the model again`,
  );
}

/** Said by a worker whose handler has no describe(); the server then leaves customizedMetadata out, as TorchServe does. */
export function noDescribeHook(modelName: string, modelVersion: string): KilnError {
  return sdkError(
    'KILN_ERR_NOT_IMPLEMENTED',
    `model "${modelName}" version ${modelVersion} has no customized metadata: its handler exports no describe() hook`,
  );
}
