import { Tensor } from 'onnxruntime-node';
import { sdkError } from '../errors/codes.js';
import { HandlerResponse } from '../handler/response.js';
import type { KilnRequest, RequestField } from '../handler/types.js';
import { datatypeOf, tensorToJson } from '../tensor/tensor.js';
import { toKilnError, type FailurePhase } from '../errors/kiln-error.js';
import { isJson, toWireError, type WireBody, type WireRequest, type WireResult } from '../runtime/wire.js';

/** What a handler threw, as a request's result: its KilnError, or KILN_ERR_HANDLER_FAILED naming the phase. */
export function failed(error: unknown, phase: FailurePhase): WireResult {
  return { ok: false, error: toWireError(toKilnError(error, 'KILN_ERR_HANDLER_FAILED', phase)) };
}

/** Normalises whatever a handler returned or threw for one request into a WireResult. */
export function toWireResult(answer: unknown): WireResult {
  if (answer instanceof Error) return failed(answer, 'handle');
  try {
    if (answer instanceof HandlerResponse) {
      const body: WireBody =
        answer.body.kind === 'json'
          ? { kind: 'json', text: jsonText(answer.body.value) }
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
    // A string is text, sent as it is (TorchServe's rule), not as a quoted JSON string.
    if (typeof answer === 'string') {
      return { ok: true, status: 200, headers: {}, body: { kind: 'bytes', data: Buffer.from(answer), contentType: TEXT } };
    }
    if (answer === undefined) throw new Error('the handler returned nothing (undefined) for this request');
    return { ok: true, status: 200, headers: {}, body: { kind: 'json', text: jsonText(answer) } };
  } catch (error) {
    return failed(error, 'postprocess');
  }
}

const TEXT = 'text/plain; charset=utf-8';

/** A record whose every value is a tensor: a handler answering with the model's outputs. */
function isTensors(value: unknown): value is Record<string, Tensor> {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || ArrayBuffer.isView(value)) return false;
  const values = Object.values(value);
  return values.length > 0 && values.every((v) => v instanceof Tensor);
}

/** An answer as JSON text; what JSON cannot carry is the handler's mistake, named, never a silent `{}`. */
function jsonText(answer: unknown): string {
  const text = JSON.stringify(toJsonValue(answer));
  if (text === undefined) throw new TypeError(`the handler returned ${describe(answer)}, which has no JSON form`);
  return text;
}

function describe(value: unknown): string {
  return typeof value === 'function' ? 'a function' : typeof value === 'symbol' ? `a symbol (${String(value)})` : typeof value;
}

/** How deep an answer may nest: far beyond any real answer, far below the stack's limit. */
const MAX_ANSWER_DEPTH = 1_000;

/**
 * Typed arrays become arrays, bigints numbers, tensors `{name, datatype, shape, data}`. A circular
 * answer, or one nested deeper than MAX_ANSWER_DEPTH, is the handler's mistake, named.
 */
export function toJsonValue(value: unknown, path: object[] = []): unknown {
  if (typeof value === 'function' || typeof value === 'symbol') {
    throw new TypeError(`the handler returned ${describe(value)} where a JSON value was expected; return data, not code`);
  }
  if (value === null || typeof value !== 'object') return typeof value === 'bigint' ? Number(value) : value;
  if (value instanceof Map || value instanceof Set) {
    const kind = value instanceof Map ? 'a Map' : 'a Set';
    const fix = value instanceof Map ? 'Object.fromEntries(map)' : '[...set]';
    throw new TypeError(`the handler returned ${kind}, which JSON would turn into {}; return a plain object or array (${fix})`);
  }
  if (value instanceof Tensor) return tensorToJson('', value);
  if (ArrayBuffer.isView(value))
    return Array.from(value as unknown as ArrayLike<number | bigint>, (v) => (typeof v === 'bigint' ? Number(v) : v));
  if (path.includes(value))
    throw new TypeError('the handler returned an object that contains itself (a circular reference), which JSON cannot carry');
  if (path.length >= MAX_ANSWER_DEPTH) throw new TypeError(`the handler returned a value nested more than ${MAX_ANSWER_DEPTH} levels deep`);
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function' && !Array.isArray(value)) return value;
  path.push(value); // the objects above this one: a value met again on its own path is a cycle
  try {
    if (Array.isArray(value)) return value.map((item) => toJsonValue(item, path));
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = toJsonValue(v, path);
    return out;
  } finally {
    path.pop();
  }
}

/** Rebuilds the handler's view of a request; bytes are wrapped, not copied. */
export function fromWireRequest(wire: WireRequest): KilnRequest {
  const body = Buffer.from(wire.body.buffer, wire.body.byteOffset, wire.body.byteLength);
  const fields: Record<string, RequestField> = {};
  for (const [name, f] of Object.entries(wire.fields ?? {})) {
    fields[name] = {
      data: Buffer.from(f.data.buffer, f.data.byteOffset, f.data.byteLength),
      contentType: f.contentType,
      filename: f.filename,
    };
  }
  const tensors =
    wire.tensors === undefined
      ? undefined
      : Object.fromEntries(
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

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (error) {
    throw Object.assign(sdkError('KILN_ERR_BAD_REQUEST', `the body is declared JSON but does not parse: ${(error as Error).message}`), {
      phase: 'decode',
    });
  }
}
