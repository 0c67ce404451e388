import type { Tensor } from 'onnxruntime-node';
import type { Datatype } from '../manifest/datatypes.js';

export type TensorType = Tensor.Type;

/** KServe v2 datatypes ↔ ONNX Runtime tensor types. BF16 has no ORT tensor type in Node. */
export const DATATYPE_TO_TENSOR_TYPE: Readonly<Partial<Record<Datatype, TensorType>>> = Object.freeze({
  BOOL: 'bool',
  UINT8: 'uint8',
  UINT16: 'uint16',
  UINT32: 'uint32',
  UINT64: 'uint64',
  INT8: 'int8',
  INT16: 'int16',
  INT32: 'int32',
  INT64: 'int64',
  FP16: 'float16',
  FP32: 'float32',
  FP64: 'float64',
  BYTES: 'string',
});

export const TENSOR_TYPE_TO_DATATYPE: Readonly<Partial<Record<TensorType, Datatype>>> = Object.freeze(
  Object.fromEntries(Object.entries(DATATYPE_TO_TENSOR_TYPE).map(([k, v]) => [v, k])) as Partial<Record<TensorType, Datatype>>,
);
