import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { sdkError } from '@kiln/handler-sdk/errors';
import { serverError } from '../errors.js';
import { lentBuffers } from '../pool/lent-buffers.js';

/**
 * Reads a v2 infer body into one buffer of its own, placed so that the first binary tensor (which
 * starts `Inference-Header-Content-Length` bytes in) lands on an 8-byte boundary. Tensors can then
 * be read as views of the body, with no copy, and handed to a worker thread whole. Buffers that
 * fastify's parser fills may start anywhere, and it copies every body once more.
 */
export function readV2Body(raw: Readable, headers: IncomingHttpHeaders, maxBytes: number): Promise<Buffer> {
  const declared = headers['content-length'] === undefined ? undefined : Number(headers['content-length']);
  const headerLength = Number(headers['inference-header-content-length'] ?? 0);
  const pad = Number.isInteger(headerLength) && headerLength > 0 ? (8 - (headerLength % 8)) % 8 : 0;
  const tooLarge = () =>
    serverError(
      'KILN_ERR_REQUEST_TOO_LARGE',
      `the request body is larger than maxRequestSize (${maxBytes} bytes); send a smaller body or raise --max-request-size`,
    );
  if (declared !== undefined && declared > maxBytes) return Promise.reject(tooLarge());

  return new Promise((resolve, reject) => {
    // With a Content-Length the body is written straight into place; chunked bodies are gathered first.
    let body = declared === undefined ? undefined : aligned(declared, pad);
    const chunks: Buffer[] = [];
    let received = 0;
    const fail = (error: Error) => {
      raw.removeAllListeners('data');
      raw.resume();
      reject(error);
    };
    raw.on('data', (chunk: Buffer) => {
      if (received + chunk.length > (declared ?? maxBytes)) {
        fail(
          declared === undefined
            ? tooLarge()
            : sdkError('KILN_ERR_BAD_REQUEST', `the body is longer than its Content-Length (${declared} bytes)`),
        );
        return;
      }
      if (body === undefined) chunks.push(chunk);
      else chunk.copy(body, received);
      received += chunk.length;
    });
    raw.once('error', reject);
    // A client that goes away mid-body ends the stream without 'end'.
    raw.once('close', () => {
      if (!raw.readableEnded) reject(sdkError('KILN_ERR_BAD_REQUEST', `the connection closed after ${received} bytes of the body`));
    });
    raw.once('end', () => {
      if (body === undefined) {
        body = aligned(received, pad);
        let at = 0;
        for (const chunk of chunks) at += chunk.copy(body, at);
      } else if (received !== declared) {
        reject(sdkError('KILN_ERR_BAD_REQUEST', `the body ended after ${received} of its ${declared} bytes`));
        return;
      }
      resolve(body);
    });
  });
}

/**
 * A buffer of `length` bytes in an ArrayBuffer of its own (never Node's pool), starting `pad` bytes
 * in: a body a worker thread gave back, or a new one. Not zeroed: every byte is written from the
 * request before it is read.
 */
function aligned(length: number, pad: number): Buffer {
  return Buffer.from(lentBuffers.take(pad + length), pad, length);
}
