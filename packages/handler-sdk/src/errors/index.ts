/**
 * `@kiln/handler-sdk/errors`: the error class, the one catalogue of codes, and their factories.
 * No native code: the server's HTTP process and the CLI import this without loading ONNX Runtime.
 */
export { KilnError, cliError, isKilnError, isKilnErrorCode, sdkError, serverError, toKilnError } from './kiln-error.js';
export type { ErrorCatalogue, ErrorFactory, ErrorSpec, FailurePhase, KilnErrorOptions } from './kiln-error.js';
export { CLI_ERRORS, ERROR_CATALOGUE, SDK_ERRORS, SERVER_ERRORS } from './catalogue.js';
export type { CliErrorCode, KilnErrorCode, SdkErrorCode, ServerErrorCode } from './catalogue.js';
