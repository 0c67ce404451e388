import type { ErrorSpec } from './kiln-error.js';

/*
 * Every error code Kiln answers with, in one catalogue: each code's HTTP status and one line on
 * what it means (docs/reference/errors.md is checked against it). Codes are grouped by the package
 * that raises them, but any package may raise any code, and `KilnError.code` is their union.
 * No native code here: the CLI and the server's HTTP thread import it without ONNX Runtime.
 */

/** Raised by the SDK: reading manifests and model configs, decoding requests, running handlers. */
export const SDK_ERRORS = {
  KILN_ERR_MANIFEST_INVALID: {
    status: 400,
    meaning: 'MAR-INF/MANIFEST.json is missing a field, has a wrong type, or is not JSON.',
  },
  KILN_ERR_MODEL_CONFIG_INVALID: {
    status: 400,
    meaning: 'model-config.yaml has an unknown key, a wrong type or a value out of range.',
  },
  KILN_ERR_BAD_REQUEST: { status: 400, meaning: 'The handler could not use the request body (wrong format or missing field).' },
  KILN_ERR_BAD_IMAGE: { status: 400, meaning: 'The request body is not an image in a format Kiln decodes (JPEG, PNG, WebP, GIF, TIFF).' },
  KILN_ERR_INPUT_MISMATCH: {
    status: 400,
    meaning: "A request's tensors do not match the model's signature (name, datatype or shape).",
  },
  KILN_ERR_HANDLER_FAILED: { status: 500, meaning: 'The handler threw while processing a request.' },
  KILN_ERR_INFERENCE_FAILED: { status: 500, meaning: 'The inference step failed: ONNX Runtime, or an overridden inference().' },
  KILN_ERR_HANDLER_LOAD: {
    status: 500,
    meaning: 'The model could not be loaded: the handler module, its export, initialize() or the ONNX session failed.',
  },
  KILN_ERR_NOT_IMPLEMENTED: {
    status: 501,
    meaning: 'The route needs a hook the handler does not export: explain() for /explanations and KServe v1 :explain.',
  },
} as const satisfies Record<`KILN_ERR_${string}`, ErrorSpec>;

/** Raised by the server: archives, config, the APIs, queues and workers. */
export const SERVER_ERRORS = {
  KILN_ERR_ARCHIVE_UNREADABLE: { status: 400, meaning: 'The file is not a Kiln archive in a format Kiln reads, or it is corrupt.' },
  KILN_ERR_ARCHIVE_UNSAFE_ENTRY: {
    status: 400,
    meaning: 'An archive entry is a link, has an absolute or `..` path, a backslash, or appears twice.',
  },
  KILN_ERR_ARCHIVE_INTEGRITY: {
    status: 400,
    meaning: "An archive's files do not match the sizes and sha256 hashes its manifest lists.",
  },
  KILN_ERR_ARCHIVE_LIMIT: {
    status: 400,
    meaning: 'An archive has too many entries, is too large when unpacked, or compresses suspiciously well (a zip bomb).',
  },
  KILN_ERR_SERVER_CONFIG_INVALID: {
    status: 400,
    meaning: 'A server flag, KILN_* variable or config file key is unknown or has a wrong value.',
  },
  KILN_ERR_MODEL_NOT_FOUND: { status: 404, meaning: 'No model is registered under that name.' },
  KILN_ERR_VERSION_NOT_FOUND: { status: 404, meaning: 'The model has no such version.' },
  KILN_ERR_MODEL_CONFLICT: { status: 409, meaning: 'A model with that name and version is already registered.' },
  KILN_ERR_MODEL_NOT_READY: { status: 503, meaning: 'The model is loading, failed to load, or is being unregistered.' },
  KILN_ERR_QUEUE_FULL: { status: 503, meaning: "The model's request queue (jobQueueSize) is full." },
  KILN_ERR_WORKER_DIED: { status: 500, meaning: 'The worker (thread or process) serving the request exited or crashed.' },
  KILN_ERR_RESPONSE_TIMEOUT: { status: 504, meaning: 'The worker did not answer within responseTimeout; it was stopped and restarted.' },
  KILN_ERR_CLIENT_TIMEOUT: {
    status: 408,
    meaning: 'The request waited in the queue longer than clientTimeoutInMills and was dropped before it ran.',
  },
  KILN_ERR_REQUEST_TOO_LARGE: { status: 413, meaning: 'The request body is larger than maxRequestSize.' },
  KILN_ERR_RESPONSE_TOO_LARGE: { status: 500, meaning: "The handler's answer is larger than maxResponseSize; it was not sent." },
  KILN_ERR_URI_TOO_LONG: { status: 414, meaning: 'A path segment (a model name, say) is longer than 100 characters.' },
  KILN_ERR_HEADERS_TOO_LARGE: { status: 431, meaning: "The request's headers are larger than Node's limit (16 KiB by default)." },
  KILN_ERR_REQUEST_TIMEOUT: {
    status: 408,
    meaning: 'The client took longer than headersTimeout to send its headers, or requestTimeout to send the whole request.',
  },
  KILN_ERR_BAD_HTTP: { status: 400, meaning: 'The request is not valid HTTP, or its path is not valid percent-encoding.' },
  KILN_ERR_ROUTE_NOT_FOUND: { status: 404, meaning: 'No API route has that path.' },
  KILN_ERR_METHOD_NOT_ALLOWED: { status: 405, meaning: 'The route exists but not for that HTTP method.' },
  KILN_ERR_SHUTTING_DOWN: { status: 503, meaning: 'The server is draining before it stops and takes no new requests.' },
  KILN_ERR_UNAUTHORIZED: { status: 401, meaning: 'The API needs a bearer token and the request had none, or a wrong one.' },
  KILN_ERR_MODEL_API_DISABLED: {
    status: 405,
    meaning: 'Registering and unregistering models over HTTP is off (--enable-model-api turns it on).',
  },
  KILN_ERR_URL_NOT_ALLOWED: { status: 404, meaning: 'A model url is not a file in the model store and matches no allowedUrls pattern.' },
  KILN_ERR_INVALID_PARAMETER: { status: 400, meaning: 'A query or body parameter is missing, not a number, or out of range.' },
  KILN_ERR_SCALE_FAILED: {
    status: 500,
    meaning: 'The workers of a model registered over the management API could not be started; it was not registered.',
  },
  KILN_ERR_PROVIDER_UNAVAILABLE: {
    status: 500,
    meaning:
      'An execution provider is needed and does not load on this machine: a model asks for GPU providers with `fallback: false` and none loads, `kiln doctor --require` names one that does not, or `kiln doctor --install cuda` could not install the CUDA provider.',
  },
  KILN_ERR_DEFAULT_VERSION_IN_USE: {
    status: 403,
    meaning: 'The default version of a model cannot be unregistered while other versions exist.',
  },
  KILN_ERR_UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    meaning: 'The API takes JSON bodies (or query parameters) and the body had another content type.',
  },
  KILN_ERR_INTERNAL: { status: 500, meaning: 'An unexpected error inside the server (a bug); the message says what failed.' },
} as const satisfies Record<`KILN_ERR_${string}`, ErrorSpec>;

/**
 * Raised by the CLI. `status` is what an HTTP API would answer if the same problem reached it (the
 * server reuses some of these when it loads archives); the CLI maps codes to exit codes.
 */
export const CLI_ERRORS = {
  KILN_ERR_USAGE: { status: 400, meaning: 'A flag or argument is missing, unknown or malformed.' },
  KILN_ERR_INVALID_MODEL_NAME: {
    status: 400,
    meaning: 'The model name has characters outside ^[A-Za-z0-9][A-Za-z0-9_\\-.]*$.',
  },
  KILN_ERR_OUTPUT_EXISTS: { status: 409, meaning: 'The archive to write already exists.' },
  KILN_ERR_FILE_NOT_FOUND: { status: 404, meaning: 'A file named by a flag does not exist.' },
  KILN_ERR_EXPORT_PATH_NOT_DIR: { status: 400, meaning: '--export-path names a file, not a folder.' },
  KILN_ERR_NOT_ONNX_MODEL: {
    status: 400,
    meaning: 'The serialized file is not an ONNX model Kiln can describe, or its external data is unusable.',
  },
  KILN_ERR_HANDLER_COMPILE: { status: 400, meaning: 'esbuild could not bundle the handler.' },
  KILN_ERR_HANDLER_EXPORT: { status: 400, meaning: 'The handler module does not export what --handler names.' },
  KILN_ERR_ARCHIVE_PATH_CONFLICT: { status: 400, meaning: 'Two inputs would be stored at the same archive path.' },
  KILN_ERR_PREDICTION_FAILED: { status: 500, meaning: '`kiln predict`: one or more inputs got an error instead of an answer.' },
  KILN_ERR_INIT_TARGET_NOT_EMPTY: { status: 409, meaning: '`kiln init` would write into a folder that already has files.' },
  KILN_ERR_BENCH_TARGET: {
    status: 502,
    meaning: '`kiln bench`: the server could not be reached or does not serve the model, or the archive could not be served.',
  },
  KILN_ERR_BENCH_FAILED: { status: 500, meaning: '`kiln bench`: every request of a concurrency level failed, or a level never finished.' },
} as const satisfies Record<`KILN_ERR_${string}`, ErrorSpec>;

export const ERROR_CATALOGUE = Object.freeze({ ...SDK_ERRORS, ...SERVER_ERRORS, ...CLI_ERRORS });

export type SdkErrorCode = keyof typeof SDK_ERRORS;
export type ServerErrorCode = keyof typeof SERVER_ERRORS;
export type CliErrorCode = keyof typeof CLI_ERRORS;
/** Every code in the catalogue. */
export type KilnErrorCode = keyof typeof ERROR_CATALOGUE;
