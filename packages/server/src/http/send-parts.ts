import type { OutgoingHttpHeaders } from 'node:http';
import type { FastifyReply } from 'fastify';

/**
 * Sends a 200 whose body is several pieces (a v2 header, then each tensor's bytes) with one writev,
 * straight from the tensors' memory: no concatenated copy of the body is ever made. The reply's
 * headers (request id, CORS, any set by the route) go out as fastify would have sent them.
 */
export function sendParts(reply: FastifyReply, contentType: string, parts: readonly Uint8Array[], closing: boolean): FastifyReply {
  let length = 0;
  for (const part of parts) length += part.byteLength;
  reply.header('content-length', length); // read back by the access log
  const headers: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) headers[name] = value;
  headers['content-type'] = contentType;
  headers['content-length'] = length;
  if (closing) headers.connection = 'close';
  reply.hijack();
  const res = reply.raw;
  res.cork();
  res.writeHead(200, headers);
  for (const part of parts) if (part.byteLength > 0) res.write(part);
  res.end();
  return reply;
}
