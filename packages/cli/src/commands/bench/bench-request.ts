/*
 * The one request `kiln bench` sends over and over: its URL, headers and body, for each protocol,
 * from a file or generated from the model's signature (its KServe v2 metadata). For `grpc` it is a
 * ModelInferRequest whose raw_input_contents are the bytes v2-binary would send after its header.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { contentTypeFor } from '@kiln/handler-sdk/runtime';
import { cliError } from '../../errors.js';
import type { BenchProtocol, BenchReport } from './report-types.js';

/** An input as the model's v2 metadata describes it; -1 marks a dimension the model leaves open. */
export interface InputSpec {
  name: string;
  datatype: string;
  shape: number[];
}

/** A KServe v2 gRPC ModelInferRequest, as @grpc/proto-loader takes it (field names as in the proto). */
export interface GrpcInferMessage {
  model_name: string;
  inputs: { name: string; datatype: string; shape: number[] }[];
  /** One entry per input, in the order of `inputs`: its little-endian bytes. */
  raw_input_contents: Uint8Array[];
}

export interface BenchRequest {
  /** The HTTP URL; for `grpc`, grpc://host:port. */
  url: string;
  /** HTTP headers; for `grpc`, the --header values only, sent as metadata. */
  headers: Record<string, string>;
  /** The HTTP body; for `grpc`, the raw input contents end to end (what the report's byte count measures). */
  body: Uint8Array;
  /** For `grpc`: the message each ModelInfer sends. */
  grpc?: GrpcInferMessage;
  input: BenchReport['input'];
  /** Guesses the reader should know about, e.g. open dimensions filled with 1. */
  warnings: string[];
}

export interface RequestOptions {
  baseUrl: string;
  /** The KServe v2 gRPC address (host:port), for `grpc`. */
  grpcAddress?: string | undefined;
  model: string;
  protocol: BenchProtocol;
  inputs: readonly InputSpec[];
  /** A file to send instead of generated tensors. */
  file?: string | undefined;
  /** Shapes for inputs with open dimensions, by input name. */
  shapes: Readonly<Record<string, number[]>>;
  headers: Readonly<Record<string, string>>;
}

interface Generated {
  name: string;
  datatype: string;
  shape: number[];
  /** JSON values, flat. */
  data: (number | boolean | string)[];
}

export function benchRequest(options: RequestOptions): BenchRequest {
  const base = options.baseUrl.replace(/\/+$/, '');
  const model = encodeURIComponent(options.model);
  const url = options.protocol === 'torchserve' ? `${base}/predictions/${model}` : `${base}/v2/models/${model}/infer`;
  const { contentType, body, input, parts } = options.file === undefined ? generatedBody(options) : fileBody(options.file, options);
  const guessed =
    options.file === undefined
      ? options.inputs.filter((i) => options.shapes[i.name] === undefined && i.shape.slice(1).some((d) => d < 0))
      : [];
  const warnings = guessed.map(
    (i) =>
      `input "${i.name}" has open dimensions [${i.shape.join(', ')}]; 1 was sent for each. Set real ones with --shape ${i.name}=${i.shape.map((d) => (d < 0 ? 'N' : d)).join(',')}`,
  );
  if (options.protocol === 'grpc') {
    const grpc = grpcInferMessage(options.model, parts!);
    const raw = Buffer.concat(grpc.raw_input_contents);
    return { warnings, url: `grpc://${options.grpcAddress}`, headers: { ...options.headers }, body: raw, grpc, input };
  }
  return {
    warnings,
    url,
    headers: { ...options.headers, 'content-type': contentType.type, ...contentType.extra, 'content-length': String(body.length) },
    body,
    input,
  };
}

/** One input's name, datatype, shape and little-endian bytes. */
export interface TensorPart {
  name: string;
  datatype: string;
  shape: number[];
  bytes: Buffer;
}

type Body = {
  contentType: { type: string; extra?: Record<string, string> };
  body: Uint8Array;
  input: BenchReport['input'];
  /** The tensors, for the binary protocols (v2-binary, grpc). */
  parts?: TensorPart[];
};

/** The ModelInferRequest for `grpc`: each input's bytes in raw_input_contents, exactly as v2-binary sends them. */
export function grpcInferMessage(model: string, parts: readonly TensorPart[]): GrpcInferMessage {
  return {
    model_name: model,
    inputs: parts.map(({ name, datatype, shape }) => ({ name, datatype, shape })),
    raw_input_contents: parts.map((p) => p.bytes),
  };
}

function generatedBody(options: RequestOptions): Body {
  if (options.inputs.length === 0) {
    throw cliError(
      'KILN_ERR_USAGE',
      `model "${options.model}" describes no inputs in its metadata, so none can be generated: pass --input FILE`,
    );
  }
  for (const name of Object.keys(options.shapes)) {
    if (!options.inputs.some((i) => i.name === name))
      throw cliError(
        'KILN_ERR_USAGE',
        `--shape ${name}=…: the model has no input "${name}"; its inputs: ${options.inputs.map((i) => i.name).join(', ')}`,
      );
  }
  const tensors = options.inputs.map((spec, i) => generate(spec, options.shapes[spec.name], i + 1));
  const description = tensors.map((t) => `${t.name} ${t.datatype} [${t.shape.join(', ')}]`).join(', ');
  // A generated tensor is already a v2 JSON input: {name, datatype, shape, data}.
  const body =
    options.protocol === 'v2-binary' || options.protocol === 'grpc'
      ? binaryBody(tensors)
      : { contentType: { type: 'application/json' }, body: Buffer.from(JSON.stringify({ inputs: tensors })) };
  return {
    ...body,
    input: { source: 'generated', bytes: bodyBytes(body, options.protocol), description: `${description}; pseudo-random values` },
  };
}

function fileBody(file: string, options: RequestOptions): Body {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (error) {
    throw cliError('KILN_ERR_FILE_NOT_FOUND', `--input ${file}: ${(error as Error).message}`);
  }
  const input = (description: string, length: number): BenchReport['input'] => ({ source: 'file', file, bytes: length, description });
  if (options.protocol === 'torchserve') {
    const type = contentTypeFor(file);
    return { contentType: { type }, body: bytes, input: input(`${basename(file)} as ${type}`, bytes.length) };
  }
  const json = parseJson(bytes);
  if (json === undefined) {
    // Not JSON: the raw bytes of the model's only input, in v2 binary form.
    if (options.protocol === 'v2-json' || options.inputs.length !== 1) {
      throw cliError(
        'KILN_ERR_USAGE',
        `--input ${file} is not JSON. With --protocol ${options.protocol}, pass a KServe v2 request body ({"inputs": [...]})${options.protocol === 'v2-json' ? '' : ', or the raw bytes of a model with one input'}`,
      );
    }
    const spec = options.inputs[0]!;
    const shape = shapeFor(spec, options.shapes[spec.name]);
    const body = binaryParts([{ name: spec.name, datatype: spec.datatype, shape, bytes }]);
    return {
      ...body,
      input: input(`${basename(file)}: raw ${spec.datatype} [${shape.join(', ')}] for ${spec.name}`, bodyBytes(body, options.protocol)),
    };
  }
  const inputs = (json as { inputs?: unknown }).inputs;
  if (!Array.isArray(inputs)) throw cliError('KILN_ERR_USAGE', `--input ${file} must be a KServe v2 request: JSON with an "inputs" list`);
  if (options.protocol === 'v2-json')
    return { contentType: { type: 'application/json' }, body: bytes, input: input(`${basename(file)}, a v2 JSON request`, bytes.length) };
  const tensors = inputs.map((t: Partial<Generated> & { data?: unknown }, i): Generated => {
    if (typeof t?.name !== 'string' || typeof t.datatype !== 'string' || !Array.isArray(t.shape) || !Array.isArray(t.data))
      throw cliError('KILN_ERR_USAGE', `--input ${file}: inputs[${i}] needs name, datatype, shape and data`);
    return { name: t.name, datatype: t.datatype, shape: t.shape, data: t.data.flat(Infinity) as Generated['data'] };
  });
  const body = binaryBody(tensors);
  return { ...body, input: input(`${basename(file)}, a v2 request sent as binary tensors`, bodyBytes(body, options.protocol)) };
}

/** What the report counts as the request's size: the HTTP body, or for `grpc` the raw input contents. */
function bodyBytes(body: Pick<Body, 'body' | 'parts'>, protocol: BenchProtocol): number {
  return protocol === 'grpc' ? (body.parts ?? []).reduce((n, p) => n + p.bytes.length, 0) : body.body.length;
}

function parseJson(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
}

/** The input's shape with its open dimensions filled: from --shape, or 1. */
function shapeFor(spec: InputSpec, given: number[] | undefined): number[] {
  if (given !== undefined) {
    const fits = given.length === spec.shape.length && given.every((d, i) => spec.shape[i]! < 0 || spec.shape[i] === d);
    if (!fits)
      throw cliError('KILN_ERR_USAGE', `--shape ${spec.name}=${given.join(',')} does not fit the input's shape [${spec.shape.join(', ')}]`);
    return given;
  }
  return spec.shape.map((d) => (d < 0 ? 1 : d));
}

/** Deterministic values: floats in [-1, 1) (Park–Miller), small integers, alternating booleans. */
function generate(spec: InputSpec, given: number[] | undefined, seed: number): Generated {
  const shape = shapeFor(spec, given);
  const n = shape.reduce((a, b) => a * b, 1);
  let s = seed;
  const next = () => (s = (s * 16807) % 2147483647) / 2147483647;
  const value: () => number | boolean | string =
    spec.datatype === 'FP32' || spec.datatype === 'FP64'
      ? () => Math.fround(next() * 2 - 1)
      : spec.datatype === 'FP16' || spec.datatype === 'BF16'
        ? () => 0
        : spec.datatype === 'BOOL'
          ? () => next() < 0.5
          : spec.datatype === 'BYTES'
            ? () => 'kiln'
            : () => Math.floor(next() * 10);
  return { name: spec.name, datatype: spec.datatype, shape, data: Array.from({ length: n }, value) };
}

/** A tensor's values as v2 binary data: little-endian, BYTES as 4-byte length + UTF-8. */
function toBytes(t: Generated): Buffer {
  const arrays: Record<string, (n: number) => { set(values: ArrayLike<number | bigint>): void; buffer: ArrayBufferLike }> = {
    FP32: (n) => new Float32Array(n),
    FP64: (n) => new Float64Array(n),
    INT8: (n) => new Int8Array(n),
    INT16: (n) => new Int16Array(n),
    INT32: (n) => new Int32Array(n),
    UINT8: (n) => new Uint8Array(n),
    UINT16: (n) => new Uint16Array(n),
    UINT32: (n) => new Uint32Array(n),
    BOOL: (n) => new Uint8Array(n),
    FP16: (n) => new Uint16Array(n),
    BF16: (n) => new Uint16Array(n),
  };
  if (t.datatype === 'BYTES') return Buffer.concat(t.data.map((v) => lengthPrefixed(String(v))));
  if (t.datatype === 'INT64' || t.datatype === 'UINT64') {
    const array = t.datatype === 'INT64' ? new BigInt64Array(t.data.length) : new BigUint64Array(t.data.length);
    array.set(t.data.map((v) => BigInt(Number(v))));
    return Buffer.from(array.buffer);
  }
  const make = arrays[t.datatype];
  if (make === undefined) throw cliError('KILN_ERR_USAGE', `input "${t.name}" has datatype ${t.datatype}, which kiln bench cannot encode`);
  const array = make(t.data.length);
  // FP16 and BF16 are generated as 0, whose bits are 0 in both.
  array.set(t.datatype === 'FP16' || t.datatype === 'BF16' ? t.data.map(() => 0) : t.data.map(Number));
  return Buffer.from(array.buffer);
}

function lengthPrefixed(text: string): Buffer {
  const bytes = Buffer.from(text);
  const length = Buffer.alloc(4);
  length.writeUInt32LE(bytes.length);
  return Buffer.concat([length, bytes]);
}

function binaryBody(tensors: Generated[]): Pick<Body, 'contentType' | 'body' | 'parts'> {
  return binaryParts(tensors.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape, bytes: toBytes(t) })));
}

/** KServe's binary tensor extension: a JSON header, then each input's bytes; outputs asked for as binary. */
function binaryParts(parts: TensorPart[]): Pick<Body, 'contentType' | 'body' | 'parts'> {
  const header = Buffer.from(
    JSON.stringify({
      inputs: parts.map(({ name, datatype, shape, bytes }) => ({ name, datatype, shape, parameters: { binary_data_size: bytes.length } })),
      parameters: { binary_data_output: true },
    }),
  );
  return {
    contentType: { type: 'application/octet-stream', extra: { 'inference-header-content-length': String(header.length) } },
    body: Buffer.concat([header, ...parts.map((p) => p.bytes)]),
    parts,
  };
}
