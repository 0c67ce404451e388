import { sdkError } from '@kiln/handler-sdk/errors';
import { DATATYPES, DATATYPE_TO_TENSOR_TYPE, fromHalf, shapeSize, toHalf, type Datatype, type Signature, type WireRequest, type WireTensor } from '@kiln/handler-sdk/runtime';

/** Bytes per element in the binary tensor extension; BYTES is length-prefixed instead. */
const ELEMENT_SIZE: Partial<Record<Datatype, number>> = {
  BOOL: 1, UINT8: 1, INT8: 1, UINT16: 2, INT16: 2, FP16: 2, UINT32: 4, INT32: 4, FP32: 4, UINT64: 8, INT64: 8, FP64: 8,
};

/** Value ranges of the integer types, checked so that 256 never wraps to 0 in a UINT8. */
const RANGE: Partial<Record<Datatype, [number, number]>> = {
  INT8: [-128, 127], UINT8: [0, 255], INT16: [-32768, 32767], UINT16: [0, 65535],
  INT32: [-2147483648, 2147483647], UINT32: [0, 4294967295],
  INT64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER], UINT64: [0, Number.MAX_SAFE_INTEGER],
};

type Typed = Exclude<WireTensor['data'], string[]>;
const ARRAY: Partial<Record<Datatype, new (n: number) => Typed>> = {
  BOOL: Uint8Array, UINT8: Uint8Array, INT8: Int8Array, UINT16: Uint16Array, INT16: Int16Array, FP16: Uint16Array,
  UINT32: Uint32Array, INT32: Int32Array, FP32: Float32Array, UINT64: BigUint64Array, INT64: BigInt64Array, FP64: Float64Array,
};

export interface V2Request {
  id: string | undefined;
  tensors: NonNullable<WireRequest['tensors']>;
  /** The outputs asked for, in order, each as binary or JSON; undefined: all, by `binaryDefault`. */
  outputs: { name: string; binary: boolean | undefined }[] | undefined;
  binaryDefault: boolean;
}

interface JsonInput {
  name?: unknown;
  shape?: unknown;
  datatype?: unknown;
  data?: unknown;
  parameters?: { binary_data_size?: unknown };
}

const bad = (message: string) => sdkError('KILN_ERR_BAD_REQUEST', message);
const mismatch = (message: string) => sdkError('KILN_ERR_INPUT_MISMATCH', message);
const shapeText = (shape: readonly number[]) => `[${shape.join(', ')}]`;

/**
 * Reads a v2 infer request (JSON, or JSON followed by binary tensors when
 * `Inference-Header-Content-Length` is given) and checks every input against the model's
 * signature before anything runs. Errors name the input, what was expected and what was received.
 */
export function parseV2Request(body: Buffer, headerLength: number | undefined, signature: Signature | undefined): V2Request {
  if (headerLength !== undefined && (!Number.isInteger(headerLength) || headerLength < 0 || headerLength > body.length)) {
    throw bad(`Inference-Header-Content-Length must be a byte count within the body (${body.length} bytes), received ${headerLength}`);
  }
  const jsonEnd = headerLength ?? body.length;
  let json: { id?: unknown; inputs?: unknown; outputs?: unknown; parameters?: { binary_data_output?: unknown } };
  try {
    json = JSON.parse(body.subarray(0, jsonEnd).toString('utf8'));
  } catch (error) {
    throw bad(`the request is not JSON: ${(error as Error).message}`);
  }
  if (!Array.isArray(json?.inputs) || json.inputs.length === 0) throw bad('the request needs "inputs": a non-empty list of {name, shape, datatype, data}');
  const known = signature?.inputs.map((s) => s.name);
  let cursor = jsonEnd;
  const tensors: V2Request['tensors'] = {};
  for (const [i, input] of (json.inputs as JsonInput[]).entries()) {
    const name = input?.name;
    if (typeof name !== 'string') throw bad(`inputs[${i}] has no "name"`);
    if (name in tensors) throw bad(`input "${name}" is given twice`);
    const spec = signature?.inputs.find((s) => s.name === name);
    if (signature !== undefined && spec === undefined) throw mismatch(`unknown input "${name}"; the model's inputs are: ${known!.join(', ')}`);
    const datatype = input.datatype as Datatype;
    if (!(DATATYPES as readonly unknown[]).includes(datatype) || datatype === 'BF16') {
      throw bad(`input "${name}" has datatype ${JSON.stringify(input.datatype)}; use one of ${DATATYPES.filter((d) => d !== 'BF16').join(', ')}`);
    }
    if (spec !== undefined && spec.datatype !== datatype) throw mismatch(`input "${name}" must be ${spec.datatype}, received ${datatype}`);
    const shape = input.shape;
    if (!Array.isArray(shape) || shape.some((d) => !Number.isInteger(d) || d < 0)) throw bad(`input "${name}" needs "shape": a list of non-negative integers, received ${JSON.stringify(shape)}`);
    if (spec?.shape !== undefined) {
      if (shape.length !== spec.shape.length) throw mismatch(`input "${name}" must have rank ${spec.shape.length} (shape ${shapeText(spec.shape)}), received shape ${shapeText(shape)}`);
      spec.shape.forEach((want, axis) => {
        if (want !== -1 && shape[axis] !== want) throw mismatch(`input "${name}" must have shape ${shapeText(spec.shape!)}, received ${shapeText(shape)} (dimension ${axis} is ${shape[axis]}, expected ${want})`);
      });
    }
    const count = shapeSize(shape);
    const size = input.parameters?.binary_data_size;
    let data: WireTensor['data'];
    if (size !== undefined) {
      if (!Number.isInteger(size) || (size as number) < 0 || cursor + (size as number) > body.length) {
        throw bad(`input "${name}" declares binary_data_size ${JSON.stringify(size)}, but the body has ${body.length - cursor} bytes left`);
      }
      data = fromBinary(name, datatype, count, body.subarray(cursor, cursor + (size as number)));
      cursor += size as number;
    } else {
      data = fromJson(name, datatype, count, input.data);
    }
    tensors[name] = { type: datatype === 'BYTES' ? 'string' : DATATYPE_TO_TENSOR_TYPE[datatype]!, data, dims: shape };
  }
  if (cursor !== body.length) throw bad(`the body has ${body.length - cursor} bytes after the last binary input; check each binary_data_size`);
  for (const spec of signature?.inputs ?? []) {
    if (!(spec.name in tensors)) throw mismatch(`missing input "${spec.name}" (${spec.datatype} ${spec.shape === undefined ? '' : shapeText(spec.shape)})`.trim());
  }
  return { id: typeof json.id === 'string' ? json.id : undefined, tensors, outputs: requestedOutputs(json.outputs, signature), binaryDefault: json.parameters?.binary_data_output === true };
}

function requestedOutputs(outputs: unknown, signature: Signature | undefined): V2Request['outputs'] {
  if (outputs === undefined) return undefined;
  if (!Array.isArray(outputs)) throw bad('"outputs" must be a list of {name, parameters}');
  const names = signature?.outputs.map((o) => o.name);
  return outputs.map((o: { name?: unknown; parameters?: { binary_data?: unknown } }, i) => {
    if (typeof o?.name !== 'string') throw bad(`outputs[${i}] has no "name"`);
    if (names !== undefined && !names.includes(o.name)) throw mismatch(`unknown output "${o.name}"; the model's outputs are: ${names.join(', ')}`);
    const binary = o.parameters?.binary_data;
    return { name: o.name, binary: typeof binary === 'boolean' ? binary : undefined };
  });
}

function fromJson(name: string, datatype: Datatype, count: number, data: unknown): WireTensor['data'] {
  if (!Array.isArray(data)) throw bad(`input "${name}" needs "data" (flat or nested list) or parameters.binary_data_size`);
  const flat = data.flat(Infinity) as unknown[];
  if (flat.length !== count) throw mismatch(`input "${name}" has ${flat.length} values, but its shape holds ${count}`);
  if (datatype === 'BYTES') {
    if (flat.some((v) => typeof v !== 'string')) throw bad(`input "${name}" is BYTES: its data must be strings`);
    return flat as string[];
  }
  const out = new ARRAY[datatype]!(count);
  const integer = datatype !== 'FP32' && datatype !== 'FP64' && datatype !== 'FP16' && datatype !== 'BOOL';
  const [min, max] = RANGE[datatype] ?? [-Infinity, Infinity];
  for (let i = 0; i < count; i++) {
    const v = flat[i];
    if (datatype === 'BOOL') {
      if (typeof v !== 'boolean') throw bad(`input "${name}" is BOOL: value ${i} must be true or false, received ${JSON.stringify(v)}`);
      out[i] = v ? 1 : 0;
    } else if (typeof v !== 'number' || (integer && !Number.isInteger(v))) {
      throw bad(`input "${name}" is ${datatype}: value ${i} must be ${integer ? 'an integer' : 'a number'}, received ${JSON.stringify(v)}`);
    } else if (v < min || v > max) {
      throw bad(`input "${name}" is ${datatype}: value ${i} must be within ${min}..${max}, received ${v}`);
    } else if (out instanceof BigInt64Array || out instanceof BigUint64Array) {
      out[i] = BigInt(v);
    } else {
      out[i] = datatype === 'FP16' ? toHalf(v) : v;
    }
  }
  return out;
}

function fromBinary(name: string, datatype: Datatype, count: number, bytes: Buffer): WireTensor['data'] {
  if (datatype === 'BYTES') {
    const strings: string[] = [];
    let at = 0;
    while (at < bytes.length) {
      if (at + 4 > bytes.length) throw bad(`input "${name}": a BYTES element's 4-byte length is cut off`);
      const length = bytes.readUInt32LE(at);
      if (at + 4 + length > bytes.length) throw bad(`input "${name}": a BYTES element of ${length} bytes runs past its binary_data_size`);
      strings.push(bytes.subarray(at + 4, at + 4 + length).toString('utf8'));
      at += 4 + length;
    }
    if (strings.length !== count) throw mismatch(`input "${name}" has ${strings.length} BYTES elements, but its shape holds ${count}`);
    return strings;
  }
  const size = ELEMENT_SIZE[datatype]!;
  const expected = count * size;
  if (bytes.length !== expected) throw mismatch(`input "${name}" has ${bytes.length} bytes of ${datatype}, but its shape needs ${expected} (${count} × ${size})`);
  const Array = ARRAY[datatype]!;
  // A view of the body where it is aligned (kserve/v2-body.ts places the first tensor so); a copy
  // only where a tensor starts off its element boundary.
  if (bytes.byteOffset % size === 0) return new (Array as unknown as new (buffer: ArrayBufferLike, offset: number, length: number) => Typed)(bytes.buffer, bytes.byteOffset, count);
  const out = new Array(count);
  new Uint8Array(out.buffer).set(bytes);
  return out;
}

/**
 * Encodes the outputs a v2 client asked for, as JSON, or a JSON header followed by binary tensors
 * (`chunks`, views of the outputs' own memory, written after the header without concatenating).
 */
export function encodeV2Response(
  outputs: readonly WireTensor[],
  request: V2Request,
  model: { name: string; version: string },
): { header: Buffer; chunks: Uint8Array[] } {
  const chosen = request.outputs === undefined
    ? outputs.map((o) => ({ tensor: o, binary: request.binaryDefault }))
    : request.outputs.map((want) => ({ tensor: outputs.find((o) => o.name === want.name), binary: want.binary ?? request.binaryDefault }));
  const chunks: Uint8Array[] = [];
  const json = chosen.map(({ tensor, binary }, i) => {
    if (tensor === undefined) throw sdkError('KILN_ERR_HANDLER_FAILED', `the handler did not return output "${request.outputs![i]!.name}"`);
    const base = { name: tensor.name, datatype: tensor.datatype, shape: tensor.shape };
    if (!binary) return { ...base, data: jsonValues(tensor) };
    const bytes = toBinary(tensor);
    chunks.push(bytes);
    return { ...base, parameters: { binary_data_size: bytes.length } };
  });
  const header = Buffer.from(JSON.stringify({ model_name: model.name, model_version: model.version, ...(request.id === undefined ? {} : { id: request.id }), outputs: json }));
  return { header, chunks };
}

function jsonValues(tensor: WireTensor): unknown[] {
  const data = tensor.data as ArrayLike<unknown>;
  const out = new Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    out[i] = typeof v === 'bigint' ? Number(v) : tensor.datatype === 'BOOL' ? v !== 0 && v !== false : tensor.datatype === 'FP16' ? fromHalf(v as number) : v;
  }
  return out;
}

function toBinary(tensor: WireTensor): Uint8Array {
  if (Array.isArray(tensor.data)) {
    const parts = (tensor.data as string[]).flatMap((s) => {
      const bytes = Buffer.from(s, 'utf8');
      const length = Buffer.alloc(4);
      length.writeUInt32LE(bytes.length);
      return [length, bytes];
    });
    return Buffer.concat(parts);
  }
  const data = tensor.data as Typed;
  if (tensor.datatype === 'BOOL' && !(data instanceof Uint8Array)) return Buffer.from(Array.from(data as ArrayLike<unknown>, (v) => (v ? 1 : 0)));
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}
