import type { KilnErrorCode } from '../errors/catalogue.js';
import { KilnError, type KilnErrorOptions } from '../errors/kiln-error.js';

/**
 * Thrown from preprocess or postprocess to fail one request: the request gets this message, and
 * the code's status from the catalogue (KILN_ERR_BAD_REQUEST, 400, unless `code` says otherwise);
 * the rest of the batch is answered.
 */
export class RequestError extends KilnError {
  constructor(message: string, options: KilnErrorOptions & { code?: KilnErrorCode } = {}) {
    super(options.code ?? 'KILN_ERR_BAD_REQUEST', message, options);
  }
}
