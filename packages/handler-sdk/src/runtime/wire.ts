import { Tensor } from 'onnxruntime-node';
import { sdkError } from '../errors/codes.js';
import { isKilnError } from '../errors/kiln-error.js';
import { HandlerResponse } from '../handler/response.js';
import type { RequestField } from '../handler/types.js';
import type { Datatype } from '../manifest/datatypes.js';
import { DATATYPE_TO_TENSOR_TYPE } from '../tensor/datatypes.js';
import { datatypeOf, tensorToJson, tensorValues } from '../tensor/tensor.js';

/**
 * A request as it crosses from the HTTP server to a worker: plain data only (structured-clone
 * friendly), bodies as bytes, never JSON-encoded tensors.
 */
export interface WireRequest {
  id: string;
  body: Uint8Array;
  contentType: string | undefined;
  headers: Record<string, string>;
  query: Record<string, string>;
  fields?: Record<string, { data: Uint8Array; contentType: string | undefined; filename: string | undefined }>;
  /** KServe v2 tensors, by name. */
  tensors?: Record<string, { type: Tensor.Type; data: Tensor.DataType; dims: readonly number[] }>;
}

/** One output tensor as it crosses back: typed-array data (string[] for BYTES), never JSON. */
export interface WireTensor {
  name: string;
  datatype: Datatype;
  shape: number[];
  data: Tensor.DataType;
}

export type WireBody =
  | { kind: 'json'; text: string }
  | { kind: 'bytes'; data: Uint8Array; contentType: string }
  /** Named tensors: the v2 route encodes them as JSON or binary; TorchServe routes as `{"outputs": [...]}`. */
  | { kind: 'tensors'; outputs: WireTensor[] };

/** Where a failure happened, for the client's message and the logs. */
export type WirePhase = 'decode' | 'preprocess' | 'inference' | 'postprocess' | 'handle';

export interface WireError {
  code: string;
  status: number;
  message: string;
  phase: WirePhase | undefined;
  itemIndex: number;
  stack: string | undefined;
}

export type WireResult =
  | { ok: true; status: number; headers: Record<string, string>; body: WireBody }
  | { ok: false; error: WireError };

/** Normalises whatever a handler returned or threw for request `index` into a WireResult. */
export function toWireResult(answer: unknown, index: number): WireResult {
  if (answer instanceof Error) return { ok: false, error: toWireError(answer, index, 'handle') };
  try {
    if (answer instanceof HandlerResponse) {
      const body: WireBody =
        answer.body.kind === 'json'
          ? { kind: 'json', text: JSON.stringify(toJsonValue(answer.body.value)) }
          : { kind: 'bytes', data: answer.body.data, contentType: answer.body.contentType };
      return { ok: true, status: answer.status, headers: { ...answer.headers }, body };
    }
    if (isTensors(answer)) {
      const outputs = Object.entries(answer).map(([name, t]) => ({ name, datatype: datatypeOf(t), shape: [...t.dims], data: t.data }));
      return { ok: true, status: 200, headers: {}, body: { kind: 'tensors', outputs } };
    }
    if (answer instanceof Uint8Array) {
      return { ok: true, status: 200, headers: {}, body: { kind: 'bytes', data: answer, contentType: 'application/octet-stream' } };
    }
    if (answer === undefined) throw new Error('the handler returned nothing (undefined) for this request');
    return { ok: true, status: 200, headers: {}, body: { kind: 'json', text: JSON.stringify(toJsonValue(answer)) } };
  } catch (error) {
    return { ok: false, error: toWireError(error, index, 'postprocess') };
  }
}

/** A record whose every value is a tensor: a handler answering with the model's outputs. */
function isTensors(value: unknown): value is Record<string, Tensor> {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || ArrayBuffer.isView(value)) return false;
  const values = Object.values(value);
  return values.length > 0 && values.every((v) => v instanceof Tensor);
}

/** `{"outputs": [{name, datatype, shape, data}]}`: how TorchServe routes send a tensors answer. */
export function tensorsAsJson(outputs: readonly WireTensor[]): string {
  return JSON.stringify({
    outputs: outputs.map((o) => ({ name: o.name, datatype: o.datatype, shape: o.shape, data: tensorValues(new Tensor(o.datatype === 'BYTES' ? 'string' : (DATATYPE_TO_TENSOR_TYPE[o.datatype] ?? 'float32') as 'float32', o.data as Float32Array, o.shape)) })),
  });
}

/** A body as TorchServe-style routes send it: JSON text (tensors as `{"outputs": [...]}`) or bytes. */
export function renderBody(body: WireBody): { contentType: string; data: string | Uint8Array } {
  if (body.kind === 'json') return { contentType: 'application/json', data: body.text };
  if (body.kind === 'tensors') return { contentType: 'application/json', data: tensorsAsJson(body.outputs) };
  return { contentType: body.contentType, data: body.data };
}

/** Keeps the handler's own code and message; anything unknown becomes KILN_ERR_HANDLER_FAILED. */
export function toWireError(error: unknown, itemIndex: number, fallbackPhase?: WirePhase): WireError {
  const err = error instanceof Error ? error : new Error(typeof error === 'string' ? error : JSON.stringify(error));
  const phase = ((err as { phase?: WirePhase }).phase ?? fallbackPhase) as WirePhase | undefined;
  if (isKilnError(err)) return { code: err.code, status: err.status, message: err.message, phase, itemIndex, stack: err.stack };
  return {
    code: 'KILN_ERR_HANDLER_FAILED',
    status: 500,
    message: `${phase ?? 'handler'} failed: ${err.message}`,
    phase,
    itemIndex,
    stack: err.stack,
  };
}

/** Typed arrays become arrays, bigints numbers, tensors `{name, datatype, shape, data}`. */
export function toJsonValue(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return typeof value === 'bigint' ? Number(value) : value;
  if (value instanceof Tensor) return tensorToJson('', value);
  if (ArrayBuffer.isView(value)) return Array.from(value as unknown as ArrayLike<number | bigint>, (v) => (typeof v === 'bigint' ? Number(v) : v));
  if (Array.isArray(value)) return value.map(toJsonValue);
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = toJsonValue(v);
  return out;
}

/** Rebuilds the handler's view of a request; bytes are wrapped, not copied. */
export function fromWireRequest(wire: WireRequest): import('../handler/types.js').KilnRequest {
  const body = Buffer.from(wire.body.buffer, wire.body.byteOffset, wire.body.byteLength);
  const fields: Record<string, RequestField> = {};
  for (const [name, f] of Object.entries(wire.fields ?? {})) {
    fields[name] = { data: Buffer.from(f.data.buffer, f.data.byteOffset, f.data.byteLength), contentType: f.contentType, filename: f.filename };
  }
  const tensors = wire.tensors === undefined ? undefined : Object.fromEntries(
    Object.entries(wire.tensors).map(([name, t]) => [name, new Tensor(t.type as 'float32', t.data as Float32Array, t.dims)]),
  );
  return {
    id: wire.id,
    body,
    contentType: wire.contentType,
    json: isJson(wire.contentType) ? parseJson(body) : undefined,
    fields,
    headers: wire.headers,
    query: wire.query,
    locals: {},
    ...(tensors === undefined ? {} : { tensors }),
  };
}

export function isJson(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const type = contentType.split(';')[0]!.trim().toLowerCase();
  return type === 'application/json' || type.endsWith('+json');
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (error) {
    throw Object.assign(sdkError('KILN_ERR_BAD_REQUEST', `the body is declared JSON but does not parse: ${(error as Error).message}`), { phase: 'decode' });
  }
}
