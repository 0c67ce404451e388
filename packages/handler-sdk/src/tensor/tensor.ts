import { Tensor } from 'onnxruntime-node';
import { sdkError } from '../errors/codes.js';
import type { Datatype } from '../manifest/datatypes.js';
import { DATATYPE_TO_TENSOR_TYPE, TENSOR_TYPE_TO_DATATYPE, type TensorType } from './datatypes.js';
import { shapeText, valuesFromJson, type TypedArray } from './decode.js';
import { shapeSize } from './shape.js';
import { jsonValues } from './tensor-values.js';

export { Tensor, shapeSize };
export type { TypedArray };

/**
 * Creates a tensor from a typed array (used as is, no copy) or from plain numbers, bigints,
 * booleans or strings (converted to the type's array). The length must match the shape.
 */
export function tensor(
  type: TensorType,
  data: TypedArray | readonly (number | bigint | boolean | string)[],
  dims: readonly number[],
): Tensor {
  const datatype = TENSOR_TYPE_TO_DATATYPE[type];
  if (datatype === undefined || datatype === 'BF16') throw sdkError('KILN_ERR_BAD_REQUEST', `tensors of type ${type} cannot be created`);
  const what = `a tensor of ${type} with shape ${shapeText(dims)}`;
  const count = shapeSize(dims);
  if (data.length !== count) throw sdkError('KILN_ERR_BAD_REQUEST', `${what} needs ${count} values, received ${data.length}`);
  if (ArrayBuffer.isView(data)) return new Tensor(type, data, dims);
  const values = valuesFromJson(what, datatype, count, data);
  return type === 'string' ? new Tensor('string', values as string[], dims) : new Tensor(type, values as TypedArray, dims);
}

/** The same, with the type named by its KServe v2 datatype (`FP32`, `INT64`, ...). */
export function tensorFromDatatype(
  datatype: Datatype,
  data: TypedArray | readonly (number | bigint | boolean | string)[],
  dims: readonly number[],
): Tensor {
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
export function tensorToJson(
  name: string,
  t: Tensor,
): { name: string; datatype: Datatype; shape: number[]; data: (number | string | boolean)[] } {
  return { name, datatype: datatypeOf(t), shape: [...t.dims], data: tensorValues(t) };
}
