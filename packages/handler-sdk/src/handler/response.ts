import type { JsonValue } from './types.js';

export interface ResponseInit {
  status?: number;
  headers?: Record<string, string>;
}

/**
 * An answer with its own status, headers or content type. Return one from postprocess (or
 * handle) when a plain JSON value is not enough: an image, a 202, a custom header.
 */
export class HandlerResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;

  private constructor(
    readonly body: { kind: 'json'; value: JsonValue } | { kind: 'bytes'; data: Uint8Array; contentType: string },
    init: ResponseInit,
  ) {
    this.status = checkStatus(init.status ?? 200);
    this.headers = Object.freeze(checkHeaders(init.headers ?? {}));
  }

  static json(value: JsonValue, init: ResponseInit = {}): HandlerResponse {
    return new HandlerResponse({ kind: 'json', value }, init);
  }

  static bytes(data: Uint8Array, contentType = 'application/octet-stream', init: ResponseInit = {}): HandlerResponse {
    return new HandlerResponse({ kind: 'bytes', data, contentType }, init);
  }
}

/** A status HTTP can carry: a whole number from 200 to 599 (1xx are not final answers). */
function checkStatus(status: number): number {
  if (Number.isInteger(status) && status >= 200 && status <= 599) return status;
  throw new TypeError(`HandlerResponse status must be a whole number from 200 to 599, received ${String(status)}`);
}

/** RFC 9110's token for names; values without CR, LF or NUL, which would split or end the header block. */
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

function checkHeaders(headers: Record<string, string>): Record<string, string> {
  for (const [name, value] of Object.entries(headers)) {
    if (!HEADER_NAME.test(name)) throw new TypeError(`HandlerResponse header name ${JSON.stringify(name)} is not a valid HTTP header name`);
    if (typeof value !== 'string' || /[\r\n\0]/.test(value)) {
      throw new TypeError(`HandlerResponse header ${name} must be a string without CR, LF or NUL, received ${JSON.stringify(value)}`);
    }
  }
  return { ...headers };
}
