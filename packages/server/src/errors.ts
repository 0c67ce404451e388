import { defineErrors } from '@kiln/handler-sdk/errors';
import { toWireError, type WireResult } from '@kiln/handler-sdk/runtime';

/** The server's error codes. */
export const serverError = defineErrors({
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
  KILN_ERR_SERVER_CONFIG_INVALID: { status: 400, meaning: 'A server flag, KILN_* variable or config file key is unknown or has a wrong value.' },
  KILN_ERR_MODEL_NOT_FOUND: { status: 404, meaning: 'No model is registered under that name.' },
  KILN_ERR_VERSION_NOT_FOUND: { status: 404, meaning: 'The model has no such version.' },
  KILN_ERR_MODEL_CONFLICT: { status: 409, meaning: 'A model with that name and version is already registered.' },
  KILN_ERR_MODEL_NOT_READY: { status: 503, meaning: 'The model is loading, failed to load, or is being unregistered.' },
  KILN_ERR_QUEUE_FULL: { status: 503, meaning: "The model's request queue (jobQueueSize) is full." },
  KILN_ERR_WORKER_DIED: { status: 500, meaning: 'The worker (thread or process) serving the request exited or crashed.' },
  KILN_ERR_RESPONSE_TIMEOUT: { status: 504, meaning: 'The worker did not answer within responseTimeout; it was stopped and restarted.' },
  KILN_ERR_CLIENT_TIMEOUT: { status: 408, meaning: 'The request waited in the queue longer than clientTimeoutInMills and was dropped before it ran.' },
  KILN_ERR_REQUEST_TOO_LARGE: { status: 413, meaning: 'The request body is larger than maxRequestSize.' },
  KILN_ERR_ROUTE_NOT_FOUND: { status: 404, meaning: 'No API route has that path.' },
  KILN_ERR_METHOD_NOT_ALLOWED: { status: 405, meaning: 'The route exists but not for that HTTP method.' },
  KILN_ERR_SHUTTING_DOWN: { status: 503, meaning: 'The server is draining before it stops and takes no new requests.' },
  KILN_ERR_UNAUTHORIZED: { status: 401, meaning: 'The API needs a bearer token and the request had none, or a wrong one.' },
  KILN_ERR_MODEL_API_DISABLED: { status: 405, meaning: 'Registering and unregistering models over HTTP is off (--enable-model-api turns it on).' },
  KILN_ERR_URL_NOT_ALLOWED: { status: 404, meaning: 'A model url is not a file in the model store and matches no allowedUrls pattern.' },
  KILN_ERR_INVALID_PARAMETER: { status: 400, meaning: 'A query or body parameter is missing, not a number, or out of range.' },
  KILN_ERR_SCALE_FAILED: { status: 500, meaning: 'The workers of a model registered over the management API could not be started; it was not registered.' },
  KILN_ERR_DEFAULT_VERSION_IN_USE: { status: 403, meaning: 'The default version of a model cannot be unregistered while other versions exist.' },
  KILN_ERR_UNSUPPORTED_MEDIA_TYPE: { status: 415, meaning: 'The API takes JSON bodies (or query parameters) and the body had another content type.' },
  KILN_ERR_INTERNAL: { status: 500, meaning: 'An unexpected error inside the server (a bug); the message says what failed.' },
});

export type ServerErrorCode = keyof typeof serverError.catalogue;

/** A request's result when the server itself refuses or loses it (no handler stack to report). */
export function failedResult(error: unknown): WireResult {
  return { ok: false, error: { ...toWireError(error, 0), stack: undefined } };
}
