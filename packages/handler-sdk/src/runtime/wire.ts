import type { Tensor } from 'onnxruntime-node';
import { isKilnError } from '../errors/kiln-error.js';
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

export function isJson(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const type = contentType.split(';')[0]!.trim().toLowerCase();
  return type === 'application/json' || type.endsWith('+json');
}
