import { sdkError } from '../errors/codes.js';
import { DATATYPES, type Datatype } from '../manifest/datatypes.js';
import type { Signature, TensorSpec } from '../manifest/manifest.js';
import { toHalf } from './float16.js';
import { shapeSize } from './shape.js';

/*
 * The one place a tensor that arrives from a client is checked and decoded: its datatype, its
 * shape against the model's signature, and its values (JSON numbers, or raw little-endian bytes).
 * Every route uses it, so the same bad tensor gets the same 400 everywhere. No ONNX Runtime here:
 * the server's HTTP thread decodes v2 requests with it.
 */

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

/** A tensor's decoded values: a typed array, or strings for BYTES. */
export type TensorValues = TypedArray | string[];

/** The datatypes a tensor can carry: every v2 datatype but BF16, which ONNX Runtime for Node lacks. */
export type TensorDatatype = Exclude<Datatype, 'BF16'>;
export const TENSOR_DATATYPES: readonly TensorDatatype[] = DATATYPES.filter((d): d is TensorDatatype => d !== 'BF16');

type NumericDatatype = Exclude<TensorDatatype, 'BYTES'>;

interface TypedArrayClass {
  new (length: number): TypedArray;
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): TypedArray;
  readonly BYTES_PER_ELEMENT: number;
}

interface NumericLayout {
  array: TypedArrayClass;
  /** What a JSON value must be: an integer in [min, max], any number, or a boolean (0 and 1 too). */
  kind: 'integer' | 'number' | 'boolean';
  min: number;
  max: number;
  /** How a checked value is stored. */
  store: 'number' | 'bigint' | 'half';
}

const int = (array: TypedArrayClass, min: number, max: number, store: 'number' | 'bigint' = 'number'): NumericLayout => ({
  array,
  kind: 'integer',
  min,
  max,
  store,
});
const float = (array: TypedArrayClass, max: number, store: 'number' | 'half' = 'number'): NumericLayout => ({
  array,
  kind: 'number',
  min: -max,
  max,
  store,
});

// BigInt64Array's constructor takes the same arguments as the others; only its element type differs.
const BIG_INT64: TypedArrayClass = BigInt64Array as TypedArrayClass;
const BIG_UINT64: TypedArrayClass = BigUint64Array as TypedArrayClass;

/** Element layout of every numeric datatype: the typed array that holds it and the values it takes. */
const LAYOUT: Readonly<Record<NumericDatatype, NumericLayout>> = {
  BOOL: { array: Uint8Array, kind: 'boolean', min: 0, max: 1, store: 'number' },
  UINT8: int(Uint8Array, 0, 255),
  INT8: int(Int8Array, -128, 127),
  UINT16: int(Uint16Array, 0, 65535),
  INT16: int(Int16Array, -32768, 32767),
  UINT32: int(Uint32Array, 0, 4294967295),
  INT32: int(Int32Array, -2147483648, 2147483647),
  // JSON numbers are doubles: 64-bit integers are exact up to 2^53.
  UINT64: int(BIG_UINT64, 0, Number.MAX_SAFE_INTEGER, 'bigint'),
  INT64: int(BIG_INT64, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, 'bigint'),
  // The largest finite value of each: a JSON number beyond it would round to Infinity.
  FP16: float(Uint16Array, 65504, 'half'),
  FP32: float(Float32Array, 3.4028234663852886e38),
  FP64: float(Float64Array, Number.MAX_VALUE),
};

/** Bytes per element in raw tensor data (the v2 binary extension); BYTES is length-prefixed instead. */
export function elementSize(datatype: NumericDatatype): number {
  return LAYOUT[datatype].array.BYTES_PER_ELEMENT;
}

export const shapeText = (shape: readonly number[]): string => `[${shape.join(', ')}]`;

const bad = (message: string, input: string | undefined) =>
  sdkError('KILN_ERR_BAD_REQUEST', message, input === undefined ? undefined : { details: { input } });
const mismatch = (message: string, input: string) => sdkError('KILN_ERR_INPUT_MISMATCH', message, { details: { input } });

/** The spec of input `name`, or a KILN_ERR_INPUT_MISMATCH naming the model's inputs. Without a signature, undefined. */
export function inputSpec(name: string, signature: Signature | undefined): TensorSpec | undefined {
  if (signature === undefined) return undefined;
  const spec = signature.inputs.find((s) => s.name === name);
  if (spec === undefined)
    throw mismatch(`unknown input "${name}"; the model's inputs are: ${signature.inputs.map((s) => s.name).join(', ')}`, name);
  return spec;
}

/** Throws KILN_ERR_INPUT_MISMATCH for the first input of the signature that `given` lacks. */
export function checkNoneMissing(given: Iterable<string>, signature: Signature | undefined): void {
  if (signature === undefined) return;
  const names = new Set(given);
  for (const spec of signature.inputs) {
    if (!names.has(spec.name)) throw mismatch(`missing input "${spec.name}" (${describeSpec(spec)})`, spec.name);
  }
}

export function describeSpec(spec: TensorSpec): string {
  return `${spec.datatype} ${spec.shape === undefined ? 'of any shape' : shapeText(spec.shape)}`;
}

/** Checks a client's datatype name: one of the v2 datatypes a tensor can carry. */
export function parseDatatype(name: string, value: unknown): TensorDatatype {
  if (typeof value === 'string' && (TENSOR_DATATYPES as readonly string[]).includes(value)) return value as TensorDatatype;
  throw bad(`input "${name}" has datatype ${JSON.stringify(value)}; use one of ${TENSOR_DATATYPES.join(', ')}`, name);
}

/** Checks a client's shape: a list of non-negative integers. */
export function parseShape(name: string, value: unknown): number[] {
  if (Array.isArray(value) && value.every((d) => Number.isInteger(d) && d >= 0)) return value as number[];
  throw bad(`input "${name}" needs "shape": a list of non-negative integers, received ${JSON.stringify(value)}`, name);
}

/**
 * Checks a tensor's datatype and shape against its spec. A tensor one rank short of the spec is one
 * row of a batch: the returned dims have a leading 1. Otherwise the dims are returned as given.
 */
export function checkAgainstSpec(
  name: string,
  datatype: Datatype,
  dims: readonly number[],
  spec: TensorSpec | undefined,
): readonly number[] {
  if (spec === undefined) return dims;
  if (spec.datatype !== datatype) throw mismatch(`input "${name}" must be ${spec.datatype}, received ${datatype}`, name);
  if (spec.shape === undefined) return dims;
  const full = dims.length === spec.shape.length - 1 ? [1, ...dims] : dims;
  if (full.length !== spec.shape.length) {
    throw mismatch(
      `input "${name}" must have shape ${shapeText(spec.shape)} (rank ${spec.shape.length}), received ${shapeText(dims)}`,
      name,
    );
  }
  spec.shape.forEach((want, axis) => {
    if (want !== -1 && full[axis] !== want) {
      throw mismatch(
        `input "${name}" must have shape ${shapeText(spec.shape!)}, received ${shapeText(full)} (dimension ${axis} is ${full[axis]}, expected ${want})`,
        name,
      );
    }
  });
  return full;
}

/** How deep JSON tensor data may nest: far beyond any tensor's rank, and far below the stack's limit. */
export const MAX_NESTING = 32;

/**
 * Decodes JSON values (flat or nested lists) into a datatype's typed array, or strings for BYTES.
 * Every value is checked: an integer type takes integers within its range (UINT8 256 is refused,
 * never wrapped to 0), BOOL takes true, false, 0 or 1. `what` names the tensor and its datatype in
 * messages (`input "x" (UINT8)`).
 */
export function valuesFromJson(what: string, datatype: TensorDatatype, count: number, data: unknown, input?: string): TensorValues {
  if (!Array.isArray(data)) throw bad(`${what} needs "data": a list of values, flat or nested`, input);
  // Flattened to a bounded depth: a list nested 200,000 deep must be refused, not overflow the stack.
  const flat: unknown[] = data.flat(MAX_NESTING);
  const nested = flat.findIndex((v) => Array.isArray(v));
  if (nested !== -1) throw bad(`${what}: "data" is nested more than ${MAX_NESTING} lists deep (at value ${nested}); send it flat`, input);
  if (flat.length !== count) throw bad(`${what} has ${flat.length} values, but its shape holds ${count}`, input);
  if (datatype === 'BYTES') {
    const index = flat.findIndex((v) => typeof v !== 'string');
    if (index !== -1) throw bad(`${what}: value ${index} must be a string, received ${JSON.stringify(flat[index])}`, input);
    return flat as string[];
  }
  const layout = LAYOUT[datatype];
  const out = new layout.array(count);
  for (let i = 0; i < count; i++) {
    const v = flat[i];
    const n = typeof v === 'bigint' && layout.kind === 'integer' ? Number(v) : v;
    if (layout.kind === 'boolean') {
      if (typeof n !== 'boolean' && n !== 0 && n !== 1)
        throw bad(`${what}: value ${i} must be true or false, received ${JSON.stringify(v)}`, input);
      out[i] = n === true || n === 1 ? 1 : 0;
      continue;
    }
    if (typeof n !== 'number' || (layout.kind === 'integer' && !Number.isInteger(n))) {
      throw bad(
        `${what}: value ${i} must be ${layout.kind === 'integer' ? 'an integer' : 'a number'}, received ${JSON.stringify(typeof v === 'bigint' ? String(v) : v)}`,
        input,
      );
    }
    if (!(n >= layout.min && n <= layout.max)) {
      throw bad(
        layout.kind === 'integer'
          ? `${what}: value ${i} must be an integer within ${layout.min}..${layout.max}, received ${n}`
          : `${what}: value ${i} must be a finite number within ±${layout.max}, received ${n}`,
        input,
      );
    }
    out[i] = layout.store === 'bigint' ? BigInt(typeof v === 'bigint' ? v : n) : layout.store === 'half' ? toHalf(n) : n;
  }
  return out;
}

/**
 * Decodes raw little-endian tensor bytes (BYTES: each element a 4-byte length and its UTF-8 bytes).
 * The typed array is a view of `bytes` where they are aligned to the element size, and a copy only
 * where they are not.
 */
export function valuesFromBytes(what: string, datatype: TensorDatatype, count: number, bytes: Uint8Array, input?: string): TensorValues {
  if (datatype === 'BYTES') return stringsFromBytes(what, count, bytes, input);
  const { array } = LAYOUT[datatype];
  const size = array.BYTES_PER_ELEMENT;
  if (bytes.byteLength !== count * size) {
    throw bad(`${what} has ${bytes.byteLength} bytes, but its shape needs ${count * size} (${count} × ${size})`, input);
  }
  if (bytes.byteOffset % size === 0) return new array(bytes.buffer, bytes.byteOffset, count);
  const out = new array(count);
  new Uint8Array(out.buffer).set(bytes);
  return out;
}

function stringsFromBytes(what: string, count: number, bytes: Uint8Array, input: string | undefined): string[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const decoder = new TextDecoder();
  const strings: string[] = [];
  let at = 0;
  while (at < bytes.byteLength) {
    if (at + 4 > bytes.byteLength) throw bad(`${what}: a BYTES element's 4-byte length is cut off`, input);
    const length = view.getUint32(at, true);
    if (at + 4 + length > bytes.byteLength) throw bad(`${what}: a BYTES element of ${length} bytes runs past the tensor's data`, input);
    strings.push(decoder.decode(bytes.subarray(at + 4, at + 4 + length)));
    at += 4 + length;
  }
  if (strings.length !== count) throw bad(`${what} has ${strings.length} BYTES elements, but its shape holds ${count}`, input);
  return strings;
}

/** One input as a client sends it: its name, datatype and shape, and either JSON data or raw bytes. */
export interface ClientTensor {
  name: string;
  datatype: unknown;
  shape: unknown;
  data?: unknown;
  bytes?: Uint8Array;
}

export interface DecodedTensor {
  datatype: TensorDatatype;
  /** The dims as sent (one rank short of the spec is allowed: see `checkAgainstSpec`). */
  dims: number[];
  values: TensorValues;
}

/**
 * Checks and decodes one client tensor against the model's signature, in a fixed order: the
 * name, the datatype, the shape against the spec, then the values. Throws KILN_ERR_BAD_REQUEST
 * for a malformed tensor and KILN_ERR_INPUT_MISMATCH for one the model does not take.
 */
export function decodeClientTensor(
  input: ClientTensor,
  signature: Signature | undefined,
  options: { allowNonFinite?: boolean } = {},
): DecodedTensor {
  const { name } = input;
  const spec = inputSpec(name, signature);
  if (input.bytes === undefined && !Array.isArray(input.data))
    throw bad(`input "${name}" needs "data": a list of values, flat or nested`, name);
  const datatype = parseDatatype(name, input.datatype);
  const dims = parseShape(name, input.shape);
  checkAgainstSpec(name, datatype, dims, spec);
  const count = shapeSize(dims);
  const what = `input "${name}" (${datatype})`;
  const values =
    input.bytes === undefined
      ? valuesFromJson(what, datatype, count, input.data, name)
      : valuesFromBytes(what, datatype, count, input.bytes, name);
  if (input.bytes !== undefined && options.allowNonFinite !== true) refuseNonFinite(what, datatype, values, name);
  return { datatype, dims, values };
}

/**
 * Refuses NaN and ±Infinity in binary float data, naming the first one: a NaN pixel would
 * otherwise run through the model and come back as a NaN score (null in JSON), silently. Models
 * that mean to take them set allowNonFinite.
 */
function refuseNonFinite(what: string, datatype: TensorDatatype, values: TensorValues, input: string): void {
  let at = -1;
  if (datatype === 'FP32') at = allFinite32(values as Float32Array) ? -1 : firstNonFinite(values as Float32Array);
  else if (datatype === 'FP64') at = firstNonFinite(values as Float64Array);
  else if (datatype === 'FP16') {
    const halves = values as Uint16Array;
    for (let i = 0; i < halves.length; i++) {
      if ((halves[i]! & 0x7c00) === 0x7c00) {
        at = i;
        break;
      }
    }
  }
  if (at === -1) return;
  const value =
    datatype === 'FP16'
      ? (values as Uint16Array)[at]! & 0x3ff
        ? NaN
        : (values as Uint16Array)[at]! & 0x8000
          ? -Infinity
          : Infinity
      : (values as Float32Array)[at]!;
  throw bad(
    `${what}: value ${at} is ${value}; send finite numbers, or set allowNonFinite: true in the model's config to take NaN and ±Infinity`,
    input,
  );
}

/*
 * This runs on every FP32 binary request, on the server's event loop, over every pixel: it has to
 * be cheap. x * 0 is ±0 for every finite x and NaN for NaN and ±Infinity, and NaN survives a sum,
 * so a sum of x * 0 is 0 exactly when every value is finite. Four sums keep the additions
 * independent: 55 µs for 150,528 floats, against 130 µs for a compare per value, and 350 µs once
 * V8 has seen the loop take a Float64Array too (so FP64, which is rare, has a loop of its own).
 */
function allFinite32(floats: Float32Array): boolean {
  let a = 0;
  let b = 0;
  let c = 0;
  let d = 0;
  const end = floats.length - (floats.length % 4);
  let i = 0;
  for (; i < end; i += 4) {
    a += floats[i]! * 0;
    b += floats[i + 1]! * 0;
    c += floats[i + 2]! * 0;
    d += floats[i + 3]! * 0;
  }
  for (; i < floats.length; i++) a += floats[i]! * 0;
  return a + b + c + d === 0;
}

/** Where the first NaN or ±Infinity is, or -1. */
function firstNonFinite(floats: Float32Array | Float64Array): number {
  for (let i = 0; i < floats.length; i++) {
    // x - x is 0 for every finite x, NaN for NaN and ±Infinity.
    if (floats[i]! - floats[i]! !== 0) return i;
  }
  return -1;
}
