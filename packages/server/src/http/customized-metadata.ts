import { KilnError } from '@kiln/handler-sdk/errors';
import type { ModelVersion } from '../registry/model-version.js';

/**
 * `customizedMetadata` for `GET /models/{m}[/{v}]?customized=true`: what the handler's describe()
 * returns, from one live worker. The request goes through the version's queue as TorchServe sends
 * its describe job, marked for the describe hook (WireRequest.hook). Undefined, and the field left
 * out as TorchServe leaves it, when the handler has no describe() or the version is not ready.
 */
export async function customizedMetadata(version: ModelVersion, requestId: string): Promise<object | undefined> {
  if (version.state.kind !== 'ready' || version.hooks?.describe === false) return undefined;
  const result = await version.submit({
    id: `${requestId}-describe`,
    body: new Uint8Array(),
    contentType: undefined,
    headers: {},
    query: {},
    hook: 'describe',
  });
  if (!result.ok) {
    // No worker had loaded when the request was queued, and the one that ran it has no describe().
    if (result.error.code === 'KILN_ERR_NOT_IMPLEMENTED') return undefined;
    throw new KilnError(result.error.code, `model "${version.name}" version ${version.version}: ${result.error.message}`, {
      cause: result.error,
    });
  }
  // The worker sends describe()'s object as JSON (worker/run-hooks.ts in the SDK).
  return result.body.kind === 'json' ? (JSON.parse(result.body.text) as object) : undefined;
}
