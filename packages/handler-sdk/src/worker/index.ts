/**
 * `@kiln/handler-sdk/worker` (internal): what a server worker, `kiln predict` and `runHandler` run
 * to load a model and serve batches. It loads ONNX Runtime (sharp loads on the first image); the
 * HTTP thread never imports it.
 */
export { createContext, initializeHandler, loadModel } from './load-model.js';
export type { LoadedModel, LoadOptions } from './load-model.js';
export { runBatch } from './run-batch.js';
export { fromWireRequest, toJsonValue, toWireResult } from './wire-convert.js';
export { createLogger } from '../runtime/logger.js';
export { createMetrics } from '../runtime/metrics.js';
export { isOwnedBuffer } from '../handler/owned-buffers.js';
export { setNativeHooks } from '../handler/native-calls.js';
export type { NativeHooks } from '../handler/native-calls.js';
