export { contentTypeFor, fromWire, runHandler, runHandlerReport } from './run-handler.js';
export type { RunInput, RunOptions, RunReport, RunResult } from './run-handler.js';
