import { sdkError, type SdkErrorCode } from '../errors/codes.js';
import { KilnError, type KilnErrorOptions } from '../errors/kiln-error.js';

/**
 * Thrown from preprocess or postprocess to fail one request with a client error: the request
 * gets this status and message, and the rest of the batch is answered.
 */
export class RequestError extends KilnError {
  constructor(message: string, options: KilnErrorOptions & { status?: number; code?: SdkErrorCode | `KILN_ERR_${string}` } = {}) {
    const code = options.code ?? 'KILN_ERR_BAD_REQUEST';
    super(code, options.status ?? 400, message, options);
  }
}

export function badRequest(message: string, details?: Record<string, unknown>): KilnError {
  return sdkError('KILN_ERR_BAD_REQUEST', message, details === undefined ? {} : { details });
}
