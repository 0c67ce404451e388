import type { KilnRequest } from './types.js';

/**
 * The payload of a request as TorchServe handlers read it: the multipart field `data` (or `body`,
 * or the only field), else the raw body.
 */
export function requestBytes(request: KilnRequest): Buffer {
  const fields = request.fields;
  const field = fields.data ?? fields.body ?? (Object.keys(fields).length === 1 ? Object.values(fields)[0] : undefined);
  return field?.data ?? request.body;
}
