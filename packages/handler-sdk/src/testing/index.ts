export { describeHandler, fromWire, runHandler, runHandlerReport } from './run-handler.js';
export { contentTypeFor } from '../runtime/content-type.js';
export type { RunInput, RunOptions, RunReport, RunResult } from './run-handler.js';
