import type { Datatype } from '../manifest/datatypes.js';
import { fromHalf } from './float16.js';

/**
 * A tensor's values as a JSON-safe array, from its datatype and raw data: bigints become numbers,
 * BOOL bytes booleans, FP16 bits numbers. No ONNX Runtime needed, so the HTTP process can use it.
 */
export function jsonValues(datatype: Datatype, data: ArrayLike<number | bigint | string | boolean>): (number | string | boolean)[] {
  const out = new Array<number | string | boolean>(data.length);
  const bool = datatype === 'BOOL';
  const half = datatype === 'FP16' && data instanceof Uint16Array;
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    out[i] = typeof v === 'bigint' ? Number(v) : bool ? v !== 0 && v !== false : half ? fromHalf(v as number) : v;
  }
  return out;
}
