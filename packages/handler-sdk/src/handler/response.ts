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
    this.status = init.status ?? 200;
    this.headers = Object.freeze({ ...(init.headers ?? {}) });
  }

  static json(value: JsonValue, init: ResponseInit = {}): HandlerResponse {
    return new HandlerResponse({ kind: 'json', value }, init);
  }

  static bytes(data: Uint8Array, contentType = 'application/octet-stream', init: ResponseInit = {}): HandlerResponse {
    return new HandlerResponse({ kind: 'bytes', data, contentType }, init);
  }
}
