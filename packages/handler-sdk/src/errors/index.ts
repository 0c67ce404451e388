/**
 * `@kiln/handler-sdk/errors`: the error class, the catalogue factory and the SDK's own codes.
 * No native code: the server's HTTP process and the CLI import this without loading ONNX Runtime.
 */
export { KilnError, defineErrors, isKilnError } from './kiln-error.js';
export type { ErrorCatalogue, ErrorFactory, ErrorSpec, KilnErrorOptions } from './kiln-error.js';
export { sdkError } from './codes.js';
export type { SdkErrorCode } from './codes.js';
