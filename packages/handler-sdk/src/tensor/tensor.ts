import { Tensor } from 'onnxruntime-node';
import { sdkError } from '../errors/codes.js';
import type { Datatype } from '../manifest/datatypes.js';
import { DATATYPE_TO_TENSOR_TYPE, TENSOR_TYPE_TO_DATATYPE, type TensorType } from './datatypes.js';
import { toHalf } from './float16.js';
import { shapeSize } from './shape.js';
import { jsonValues } from './tensor-values.js';

export { Tensor, shapeSize };

export type TypedArray =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

const ARRAY_FOR_TYPE: Partial<Record<TensorType, { new (length: number): TypedArray; from(values: ArrayLike<number | bigint>): TypedArray }>> = {
  float32: Float32Array,
  float64: Float64Array,
  int8: Int8Array,
  uint8: Uint8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int32: Int32Array,
  uint32: Uint32Array,
  int64: BigInt64Array as never,
  uint64: BigUint64Array as never,
  bool: Uint8Array,
  float16: Uint16Array,
};

/**
 * Creates a tensor from a typed array (used as is, no copy) or from plain numbers, bigints,
 * booleans or strings (converted to the type's array). The length must match the shape.
 */
export function tensor(type: TensorType, data: TypedArray | readonly (number | bigint | boolean | string)[], dims: readonly number[]): Tensor {
  const expected = shapeSize(dims);
  if (data.length !== expected) {
    throw sdkError('KILN_ERR_BAD_REQUEST', `a ${type} tensor of shape [${dims.join(', ')}] needs ${expected} values, received ${data.length}`);
  }
  if (type === 'string') return new Tensor('string', (data as readonly unknown[]).map(String), dims);
  if (ArrayBuffer.isView(data)) return new Tensor(type, data as never, dims);
  const Ctor = ARRAY_FOR_TYPE[type];
  if (Ctor === undefined) throw sdkError('KILN_ERR_BAD_REQUEST', `tensors of type ${type} cannot be created from plain values`);
  const values = data as readonly unknown[];
  const integer = type !== 'float32' && type !== 'float64' && type !== 'float16';
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    const ok = type === 'bool' ? typeof v === 'boolean' || v === 0 || v === 1 : typeof v === 'bigint' || (typeof v === 'number' && (!integer || Number.isInteger(v)));
    if (!ok) {
      throw sdkError('KILN_ERR_BAD_REQUEST', `a ${type} tensor cannot hold ${JSON.stringify(typeof v === 'bigint' ? String(v) : v)} (value ${i}); send ${integer ? 'integers' : 'numbers'}`);
    }
  }
  const big = type === 'int64' || type === 'uint64';
  const converted = values.map((v) => (big ? BigInt(v as number) : type === 'float16' ? toHalf(Number(v)) : Number(v)));
  return new Tensor(type, Ctor.from(converted as never) as never, dims);
}

/** The same, with the type named by its KServe v2 datatype (`FP32`, `INT64`, ...). */
export function tensorFromDatatype(datatype: Datatype, data: TypedArray | readonly (number | bigint | boolean | string)[], dims: readonly number[]): Tensor {
  const type = DATATYPE_TO_TENSOR_TYPE[datatype];
  if (type === undefined) throw sdkError('KILN_ERR_BAD_REQUEST', `datatype ${datatype} is not supported by ONNX Runtime for Node`);
  return tensor(type, data, dims);
}

export function datatypeOf(t: Tensor): Datatype {
  return TENSOR_TYPE_TO_DATATYPE[t.type as TensorType] ?? 'BYTES';
}

/** A tensor's values as a JSON-safe array: bigints become numbers, bools become booleans. */
export function tensorValues(t: Tensor): (number | string | boolean)[] {
  return jsonValues(datatypeOf(t), t.data as ArrayLike<number | bigint | string>);
}

/** `{name, datatype, shape, data}` as the KServe v2 protocol writes an output tensor. */
export function tensorToJson(name: string, t: Tensor): { name: string; datatype: Datatype; shape: number[]; data: (number | string | boolean)[] } {
  return { name, datatype: datatypeOf(t), shape: [...t.dims], data: tensorValues(t) };
}
