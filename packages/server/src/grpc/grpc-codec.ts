import { sdkError } from '@kiln/handler-sdk/errors';
import {
  DATATYPE_TO_TENSOR_TYPE,
  checkNoneMissing,
  decodeClientTensor,
  inputSpec,
  type Datatype,
  type Signature,
  type TypedArray,
  type WireRequest,
  type WireTensor,
} from '@kiln/handler-sdk/runtime';
import { toBinary } from '../kserve/v2-codec.js';
import { lentBuffers } from '../pool/lent-buffers.js';

/*
 * ModelInferRequest → the tensors the v2 HTTP route hands the batcher, and outputs →
 * ModelInferResponse. The messages are plain objects as @grpc/proto-loader gives and takes them
 * (field names as in the .proto, int64 as numbers on the way in, `bytes` as Buffers).
 */

/** InferTensorContents: the one field a datatype names holds the values. */
export interface TensorContents {
  bool_contents?: boolean[];
  int_contents?: number[];
  int64_contents?: (number | string)[];
  uint_contents?: number[];
  uint64_contents?: (number | string)[];
  fp32_contents?: number[];
  fp64_contents?: number[];
  bytes_contents?: Uint8Array[];
}

export interface InferTensorMessage {
  name?: string;
  datatype?: string;
  shape?: (number | string)[];
  contents?: TensorContents | null;
}

export interface InferRequestMessage {
  model_name?: string;
  model_version?: string;
  id?: string;
  inputs?: InferTensorMessage[];
  outputs?: { name?: string }[];
  raw_input_contents?: Uint8Array[];
}

export interface InferResponseMessage {
  model_name: string;
  model_version: string;
  id: string;
  outputs: { name: string; datatype: string; shape: number[]; contents?: TensorContents }[];
  raw_output_contents: Uint8Array[];
  parameters?: Record<string, { string_param: string }>;
}

export interface GrpcInferRequest {
  id: string;
  tensors: NonNullable<WireRequest['tensors']>;
  /** The outputs asked for, in order; undefined: all. */
  outputs: string[] | undefined;
  /** Answer in raw_output_contents: the request came raw (Triton's rule). */
  raw: boolean;
}

type ContentsField = keyof TensorContents;

/** The field of InferTensorContents each datatype's values go in; FP16 and BF16 have none (raw only). */
const CONTENTS_FIELD: Readonly<Partial<Record<Datatype, ContentsField>>> = {
  BOOL: 'bool_contents',
  INT8: 'int_contents',
  INT16: 'int_contents',
  INT32: 'int_contents',
  INT64: 'int64_contents',
  UINT8: 'uint_contents',
  UINT16: 'uint_contents',
  UINT32: 'uint_contents',
  UINT64: 'uint64_contents',
  FP32: 'fp32_contents',
  FP64: 'fp64_contents',
  BYTES: 'bytes_contents',
};

const bad = (message: string) => sdkError('KILN_ERR_BAD_REQUEST', message);

/**
 * Checks and decodes a ModelInferRequest's inputs against the model's signature, as the v2 HTTP
 * route does its JSON and binary inputs (the same checks, the same messages). Raw contents are
 * used where they lie, as views of the received message, and copied only where a tensor does not
 * start on its element boundary; typed contents are checked value by value.
 */
export function parseGrpcInferRequest(
  message: InferRequestMessage,
  signature: Signature | undefined,
  options: { allowNonFinite?: boolean; id: string },
): GrpcInferRequest {
  const inputs = message.inputs ?? [];
  const raw = message.raw_input_contents ?? [];
  if (inputs.length === 0) throw bad('the request needs inputs: a non-empty list of {name, datatype, shape, contents}');
  if (raw.length > 0 && raw.length !== inputs.length) {
    throw bad(`raw_input_contents has ${raw.length} entries for ${inputs.length} inputs; give one per input, in the order of inputs`);
  }
  const tensors: GrpcInferRequest['tensors'] = {};
  for (const [i, input] of inputs.entries()) {
    const name = input.name ?? '';
    if (name === '') throw bad(`inputs[${i}] has no name`);
    if (name in tensors) throw bad(`input "${name}" is given twice`);
    const shape = (input.shape ?? []).map(Number);
    let decoded;
    if (raw.length > 0) {
      if (hasValues(input.contents)) {
        throw bad(`input "${name}" sets contents while the request has raw_input_contents; send every input one way or the other`);
      }
      decoded = decodeClientTensor({ name, datatype: input.datatype, shape, bytes: lent(raw[i]!) }, signature, options);
    } else {
      inputSpec(name, signature); // an unknown input is named before its contents are looked at
      decoded = decodeClientTensor({ name, datatype: input.datatype, shape, data: typedValues(name, input) }, signature, options);
    }
    tensors[name] = { type: DATATYPE_TO_TENSOR_TYPE[decoded.datatype]!, data: decoded.values, dims: decoded.dims };
  }
  checkNoneMissing(Object.keys(tensors), signature);
  const outputs = message.outputs?.length ? message.outputs.map((o, i) => requestedOutput(o.name, i, signature)) : undefined;
  return { id: options.id, tensors, outputs, raw: raw.length > 0 };
}

/**
 * Raw contents copied into a buffer of the server's pool (lent-buffers.ts), which the worker thread
 * gives back with its batch: one copy, where the view of grpc-js's message would be copied anyway
 * when it is not aligned, into fresh memory each time (its page faults and the collections they set
 * off cost more than the copy). Small contents are left where they lie.
 */
function lent(bytes: Uint8Array): Uint8Array {
  if (bytes.byteLength < LENT_FROM) return bytes;
  const copy = new Uint8Array(lentBuffers.take(bytes.byteLength), 0, bytes.byteLength);
  copy.set(bytes);
  return copy;
}
const LENT_FROM = 16 * 1024;

function hasValues(contents: TensorContents | null | undefined): boolean {
  return contents != null && Object.values(contents).some((values) => Array.isArray(values) && values.length > 0);
}

/** An input's values from the contents field its datatype names, as the JSON decoder takes them. */
function typedValues(name: string, input: InferTensorMessage): unknown[] {
  const datatype = input.datatype as Datatype;
  const field = CONTENTS_FIELD[datatype];
  if (field === undefined) {
    if (datatype === 'FP16' || datatype === 'BF16')
      throw bad(`input "${name}" is ${datatype}, which has no typed contents: send it in raw_input_contents`);
    return []; // an unknown datatype: the decoder names it
  }
  if (input.contents == null) throw bad(`input "${name}" needs contents.${field}, or the request raw_input_contents`);
  const values: unknown[] = input.contents[field] ?? [];
  if (values.length === 0) {
    const other = (Object.keys(input.contents) as ContentsField[]).find((f) => (input.contents![f]?.length ?? 0) > 0);
    if (other !== undefined) throw bad(`input "${name}" is ${datatype}: its values go in contents.${field}, received contents.${other}`);
  }
  if (field === 'bytes_contents')
    return (values as Uint8Array[]).map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8'));
  if (field === 'int64_contents' || field === 'uint64_contents') return values.map((v) => BigInt(v as number | string));
  return values;
}

function requestedOutput(name: string | undefined, i: number, signature: Signature | undefined): string {
  if (name === undefined || name === '') throw bad(`outputs[${i}] has no name`);
  const names = signature?.outputs.map((o) => o.name);
  if (names !== undefined && !names.includes(name))
    throw sdkError('KILN_ERR_INPUT_MISMATCH', `unknown output "${name}"; the model's outputs are: ${names.join(', ')}`);
  return name;
}

/**
 * The outputs asked for, as a ModelInferResponse: raw when the request was raw, or when an output
 * is FP16 (which has no typed field, and raw and typed contents do not mix in one answer); typed
 * otherwise. Raw outputs are views of the outputs' own memory until grpc-js writes the message.
 */
export function encodeGrpcInferResponse(
  outputs: readonly WireTensor[],
  request: GrpcInferRequest,
  model: { name: string; version: string },
): { message: InferResponseMessage; bytes: number } {
  const chosen =
    request.outputs === undefined
      ? outputs
      : request.outputs.map((name) => {
          const tensor = outputs.find((o) => o.name === name);
          if (tensor === undefined) throw sdkError('KILN_ERR_HANDLER_FAILED', `the handler did not return output "${name}"`);
          return tensor;
        });
  const raw = request.raw || chosen.some((o) => CONTENTS_FIELD[o.datatype] === undefined);
  const message: InferResponseMessage = {
    model_name: model.name,
    model_version: model.version,
    id: request.id,
    outputs: [],
    raw_output_contents: [],
  };
  let bytes = 0;
  for (const tensor of chosen) {
    const base = { name: tensor.name, datatype: tensor.datatype, shape: tensor.shape };
    if (raw) {
      const data = toBinary(tensor);
      bytes += data.byteLength;
      message.outputs.push(base);
      message.raw_output_contents.push(data);
    } else {
      const contents = typedContents(tensor);
      bytes += byteSize(tensor);
      message.outputs.push({ ...base, contents });
    }
  }
  return { message, bytes };
}

function typedContents(tensor: WireTensor): TensorContents {
  const field = CONTENTS_FIELD[tensor.datatype]!;
  if (field === 'bytes_contents') return { bytes_contents: (tensor.data as string[]).map((s) => Buffer.from(s, 'utf8')) };
  const data = tensor.data as TypedArray;
  if (field === 'bool_contents') return { bool_contents: Array.from(data as ArrayLike<number | boolean>, (v) => Boolean(v)) };
  // 64-bit integers as decimal text: exact, where a number would round past 2^53.
  if (field === 'int64_contents' || field === 'uint64_contents') return { [field]: Array.from(data as ArrayLike<bigint>, String) };
  return { [field]: Array.from(data as ArrayLike<number>) };
}

function byteSize(tensor: WireTensor): number {
  if (Array.isArray(tensor.data)) return (tensor.data as string[]).reduce((n, s) => n + 4 + Buffer.byteLength(s), 0);
  return (tensor.data as TypedArray).byteLength;
}
