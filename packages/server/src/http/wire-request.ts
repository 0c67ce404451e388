import type { FastifyRequest } from 'fastify';
import type { WireRequest } from '@kiln/handler-sdk';

/**
 * Turns an HTTP request into the worker's request: raw bytes, lower-case headers, multipart fields.
 * `hidden` headers (the Authorization that carried Kiln's own token) never reach the handler.
 */
export async function toWireRequest(request: FastifyRequest, hidden: readonly string[] = []): Promise<WireRequest> {
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
    wire.fields = {};
    for await (const part of request.parts()) {
      if (part.type === 'file') wire.fields[part.fieldname] = { data: await part.toBuffer(), contentType: part.mimetype, filename: part.filename };
      else wire.fields[part.fieldname] = { data: Buffer.from(String(part.value)), contentType: undefined, filename: undefined };
    }
  }
  return wire;
}
