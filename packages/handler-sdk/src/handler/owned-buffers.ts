import type { Tensors } from './types.js';

/**
 * Buffers the runtime made for one batch (ONNX Runtime's output tensors) and nobody else holds:
 * a worker thread hands them to the server without a copy. Anything else a handler answers with
 * (a cached tensor, say) is copied instead, so the handler's own data is never taken from it.
 */
const owned = new WeakSet<ArrayBufferLike>();

export function markOwned(tensors: Tensors): void {
  for (const tensor of Object.values(tensors)) {
    const data: unknown = tensor.data;
    if (ArrayBuffer.isView(data)) owned.add(data.buffer);
  }
}

export function isOwnedBuffer(buffer: ArrayBufferLike): boolean {
  return owned.has(buffer);
}
