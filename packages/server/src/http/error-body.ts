import type { KilnError } from '@kiln/handler-sdk/errors';

/** TorchServe's exception names, by status, for the `type` field of its error body. */
const TYPE_BY_STATUS: Record<number, string> = {
  400: 'BadRequestException',
  401: 'InvalidKeyException',
  403: 'IllegalArgumentException',
  404: 'ResourceNotFoundException',
  405: 'MethodNotAllowedException',
  408: 'RequestTimeoutException',
  409: 'ConflictStatusException',
  413: 'RequestEntityTooLargeException',
  414: 'RequestUriTooLongException',
  415: 'UnsupportedMediaTypeException',
  431: 'RequestHeaderFieldsTooLargeException',
  501: 'NotImplementedException',
  503: 'ServiceUnavailableException',
  504: 'TimeoutException',
  507: 'OutOfMemoryException',
};

const TYPE_BY_CODE: Record<string, string> = {
  KILN_ERR_MODEL_NOT_FOUND: 'ModelNotFoundException',
  KILN_ERR_VERSION_NOT_FOUND: 'ModelVersionNotFoundException',
};

/** The body TorchServe-compatible routes answer errors with, plus Kiln's stable code. */
export interface ErrorBody {
  code: number;
  type: string;
  message: string;
  errorCode: string;
}

export function errorBody(error: KilnError): ErrorBody {
  const type = TYPE_BY_CODE[error.code] ?? TYPE_BY_STATUS[error.status] ?? 'InternalServerException';
  return { code: error.status, type, message: error.message, errorCode: error.code };
}

/** The body KServe routes (v2 and v1) answer errors with: Triton's `{"error": "..."}`, with Kiln's code beside it. */
export function v2ErrorBody(error: KilnError): { error: string; errorCode: string } {
  return { error: error.message, errorCode: error.code };
}
