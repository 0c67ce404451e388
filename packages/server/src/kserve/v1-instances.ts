import { sdkError } from '@kiln/handler-sdk/errors';

/** Standard or URL-safe base64, padded or not, without whitespace. */
const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

export function isBase64(text: string): boolean {
  if (!BASE64.test(text)) return false;
  return text.endsWith('=') ? text.length % 4 === 0 : text.length % 4 !== 1;
}

/**
 * The body a KServe v1 instance becomes for the handler. Bytes sent the two ways v1 clients send
 * them reach the handler as bytes, exactly as a raw body posted to /predictions would, so an image
 * handler answers them unchanged: TorchServe's KServe wrapper sends `{"data": "<base64>"}`, and TF
 * Serving's clients `{"b64": "<base64>"}`. `b64` is always base64 (a 400 when it is not); a `data`
 * string that is not base64 is text (TorchServe's text handlers read `data` as text), and stays
 * JSON. Any other instance is its own JSON body.
 */
export function instanceBody(instance: unknown, index: number): { body: Uint8Array; contentType: string } {
  if (instance !== null && typeof instance === 'object' && !Array.isArray(instance)) {
    const keys = Object.keys(instance);
    const key = keys[0];
    if (keys.length === 1 && (key === 'b64' || key === 'data')) {
      const value = (instance as Record<string, unknown>)[key];
      const base64 = typeof value === 'string' && isBase64(value);
      if (key === 'b64' && !base64) {
        const received =
          typeof value === 'string' ? `"${value.slice(0, 40)}${value.length > 40 ? '…' : ''}"` : String(JSON.stringify(value)).slice(0, 40);
        throw sdkError(
          'KILN_ERR_BAD_REQUEST',
          `instance ${index}: "b64" must be a base64 string (TF Serving's form for bytes), received ${received}`,
        );
      }
      // An empty `data` string is text as much as it is base64: it stays JSON.
      if (base64 && (key === 'b64' || value !== '')) return { body: Buffer.from(value, 'base64'), contentType: 'application/octet-stream' };
    }
  }
  return { body: Buffer.from(JSON.stringify(instance)), contentType: 'application/json' };
}
