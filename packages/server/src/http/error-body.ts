import { isKilnError } from '@kiln/handler-sdk/errors';
import { type WireError } from '@kiln/handler-sdk/runtime';

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
  415: 'UnsupportedMediaTypeException',
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

export function errorBody(error: { code: string; status: number; message: string }): ErrorBody {
  const type = TYPE_BY_CODE[error.code] ?? TYPE_BY_STATUS[error.status] ?? 'InternalServerException';
  return { code: error.status, type, message: error.message, errorCode: error.code };
}

/** Normalises anything thrown in a route into a status, code and message. */
export function toHttpError(error: unknown): WireError {
  if (isKilnError(error)) return { code: error.code, status: error.status, message: error.message, phase: undefined, itemIndex: 0, stack: error.stack };
  const fastify = error as { statusCode?: number; code?: string; message?: string };
  const status = typeof fastify.statusCode === 'number' && fastify.statusCode >= 400 ? fastify.statusCode : 500;
  // Other framework errors (a body that is not valid JSON, say) are the client's: 400.
  return {
    code: status >= 500 ? 'KILN_ERR_INTERNAL' : 'KILN_ERR_BAD_REQUEST',
    status: status >= 500 ? 500 : 400,
    message: fastify.message ?? String(error),
    phase: undefined,
    itemIndex: 0,
    stack: (error as Error).stack,
  };
}
