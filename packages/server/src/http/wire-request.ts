import type { FastifyRequest } from 'fastify';
import { isKilnError, sdkError } from '@kiln/handler-sdk/errors';
import type { WireRequest } from '@kiln/handler-sdk/runtime';
import { serverError } from '../errors.js';

/**
 * Turns an HTTP request into the worker's request: raw bytes, lower-case headers, multipart fields.
 * `hidden` headers (the Authorization that carried Kiln's own token) never reach the handler.
 */
export async function toWireRequest(request: FastifyRequest, hidden: readonly string[] = [], maxBytes = Infinity): Promise<WireRequest> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    if (value !== undefined && !hidden.includes(name)) headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  const query: Record<string, string> = {};
  for (const [name, value] of Object.entries((request.query ?? {}) as Record<string, unknown>)) query[name] = String(value);
  const wire: WireRequest = {
    id: request.id,
    body: Buffer.isBuffer(request.body) ? request.body : new Uint8Array(),
    contentType: request.headers['content-type'],
    headers,
    query,
  };
  if (request.isMultipart()) {
    // The multipart parser limits each file; the whole request is held to maxRequestSize here.
    wire.fields = {};
    let total = 0;
    const tooLarge = () =>
      serverError(
        'KILN_ERR_REQUEST_TOO_LARGE',
        `the request body is larger than maxRequestSize (${maxBytes} bytes); send a smaller body or raise --max-request-size`,
      );
    try {
      for await (const part of request.parts()) {
        const data = part.type === 'file' ? await part.toBuffer() : Buffer.from(String(part.value));
        total += data.length;
        if (total > maxBytes) throw tooLarge();
        wire.fields[part.fieldname] =
          part.type === 'file'
            ? { data, contentType: part.mimetype, filename: part.filename }
            : { data, contentType: undefined, filename: undefined };
      }
    } catch (error) {
      if (isKilnError(error)) throw error;
      if ((error as { code?: string }).code === 'FST_REQ_FILE_TOO_LARGE') throw tooLarge();
      // Anything else the multipart parser raises is about the body the client sent (no boundary, a
      // form cut short): a 400 that says so, never a 500.
      throw sdkError(
        'KILN_ERR_BAD_REQUEST',
        `the multipart body could not be read (${(error as Error).message}); send complete multipart/form-data with the boundary its Content-Type names`,
        { cause: error },
      );
    }
  }
  return wire;
}
