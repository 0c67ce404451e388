import type { Tensor } from 'onnxruntime-node';
import type { KilnErrorCode } from '../errors/catalogue.js';
import { KilnError, isKilnErrorCode, type FailurePhase } from '../errors/kiln-error.js';
import type { Datatype } from '../manifest/datatypes.js';
import { jsonValues } from '../tensor/tensor-values.js';

/*
 * What crosses between the HTTP process and a worker, and the parts of it the HTTP process needs.
 * Nothing here loads ONNX Runtime (the `Tensor` import is a type): see worker/wire-convert.ts for
 * the conversions that run in the worker.
 */

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
  /**
   * The handler hook that answers this request instead of handle(): `explain` for /explanations and
   * KServe v1 `:explain`, `describe` for `?customized=true`. Absent for a prediction, which is all
   * the hot path tests (runBatch). See runtime/hooks.ts.
   */
  hook?: HookName;
}

/** The optional handler hooks a request can be sent to. */
export type HookName = 'explain' | 'describe';

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
export type WirePhase = FailurePhase;

/** A KilnError as it crosses from a worker to the server: plain data, kept whole (its stack is the handler's). */
export interface WireError {
  code: KilnErrorCode;
  message: string;
  phase: WirePhase | undefined;
  stack: string | undefined;
}

/**
 * A request's outcome. Workers send `WireResult`s; the server turns each error back into a
 * KilnError (`fromWireError`) and carries `Result`s from there to the route that answers.
 */
export type WireResult<E = WireError> =
  { ok: true; status: number; headers: Record<string, string>; body: WireBody } | { ok: false; error: E };

/** A request's outcome on the server's side. */
export type Result = WireResult<KilnError>;

/** A KilnError as a worker sends it (status is the catalogue's, so it need not travel). */
export function toWireError(error: KilnError): WireError {
  return { code: error.code, message: error.message, phase: error.phase, stack: error.stack };
}

/** The KilnError a worker sent, with the handler's stack and phase. An unknown code (a newer worker) is KILN_ERR_INTERNAL. */
export function fromWireError(wire: WireError): KilnError {
  const error = isKilnErrorCode(wire.code)
    ? new KilnError(wire.code, wire.message)
    : new KilnError('KILN_ERR_INTERNAL', `${wire.code}: ${wire.message}`);
  error.phase = wire.phase;
  if (wire.stack !== undefined) error.stack = wire.stack;
  return error;
}

/** `{"outputs": [{name, datatype, shape, data}]}`: how TorchServe routes send a tensors answer. */
export function tensorsAsJson(outputs: readonly WireTensor[]): string {
  return JSON.stringify({
    outputs: outputs.map((o) => ({ name: o.name, datatype: o.datatype, shape: o.shape, data: jsonValues(o.datatype, o.data) })),
  });
}

/** A body as TorchServe-style routes send it: JSON text (tensors as `{"outputs": [...]}`) or bytes. */
export function renderBody(body: WireBody): { contentType: string; data: string | Uint8Array } {
  if (body.kind === 'json') return { contentType: 'application/json', data: body.text };
  if (body.kind === 'tensors') return { contentType: 'application/json', data: tensorsAsJson(body.outputs) };
  return { contentType: body.contentType, data: body.data };
}

export function isJson(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const type = contentType.split(';')[0]!.trim().toLowerCase();
  return type === 'application/json' || type.endsWith('+json');
}
