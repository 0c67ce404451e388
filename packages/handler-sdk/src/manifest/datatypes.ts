/** Tensor element types in KServe v2 spelling, the names the manifest and the v2 API use. */
export const DATATYPES = [
  'BOOL',
  'UINT8',
  'UINT16',
  'UINT32',
  'UINT64',
  'INT8',
  'INT16',
  'INT32',
  'INT64',
  'FP16',
  'FP32',
  'FP64',
  'BF16',
  'BYTES',
] as const;

export type Datatype = (typeof DATATYPES)[number];

/** ONNX `TensorProto.DataType` numbers → KServe v2 datatypes. Types v2 cannot express are absent. */
export const ONNX_ELEMENT_TYPES: Readonly<Record<number, Datatype>> = Object.freeze({
  1: 'FP32',
  2: 'UINT8',
  3: 'INT8',
  4: 'UINT16',
  5: 'INT16',
  6: 'INT32',
  7: 'INT64',
  8: 'BYTES',
  9: 'BOOL',
  10: 'FP16',
  11: 'FP64',
  12: 'UINT32',
  13: 'UINT64',
  16: 'BF16',
});

/** Names of the ONNX element types Kiln cannot serve, for error messages. */
export const ONNX_UNSUPPORTED_ELEMENT_TYPES: Readonly<Record<number, string>> = Object.freeze({
  0: 'UNDEFINED',
  14: 'COMPLEX64',
  15: 'COMPLEX128',
  17: 'FLOAT8E4M3FN',
  18: 'FLOAT8E4M3FNUZ',
  19: 'FLOAT8E5M2',
  20: 'FLOAT8E5M2FNUZ',
  21: 'UINT4',
  22: 'INT4',
  23: 'FLOAT4E2M1',
});
