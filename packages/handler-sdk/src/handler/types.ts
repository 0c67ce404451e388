import type { InferenceSession, Tensor } from 'onnxruntime-node';
import type { ModelConfig } from '../config/model-config-schema.js';
import type { Manifest, Signature } from '../manifest/manifest.js';
import type { HandlerResponse } from './response.js';

/** One part of a multipart/form-data body (`curl -F data=@cat.jpg`). */
export interface RequestField {
  data: Buffer;
  contentType: string | undefined;
  filename: string | undefined;
}

/** One client request, as the handler sees it. `TJson` is the decoded JSON body's type. */
export interface KilnRequest<TJson = unknown> {
  /** The request id, also sent back as `x-request-id`. */
  id: string;
  /** The raw body bytes; empty for a multipart body, whose parts are in `fields`. */
  body: Buffer;
  contentType: string | undefined;
  /** The decoded body when the content type is JSON, otherwise undefined. */
  json: TJson | undefined;
  /** Multipart fields by name; empty for other bodies. */
  fields: Readonly<Record<string, RequestField>>;
  /** Header names in lower case. */
  headers: Readonly<Record<string, string>>;
  query: Readonly<Record<string, string>>;
  /** Named tensors, when the request arrived through the KServe v2 protocol. */
  tensors?: Readonly<Record<string, Tensor>>;
  /** Scratch space for the handler: what preprocess learns (an image's size, say) for postprocess. */
  locals: Record<string, unknown>;
}

/** A handler's answer to one request: a JSON value, bytes, or a response with its own status. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export type Answer = JsonValue | Uint8Array | HandlerResponse | object;

/** Named tensors going into or out of the model. */
export type Tensors = Record<string, Tensor>;

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export type Labels = Readonly<Record<string, string>>;

export interface Counter {
  inc(value?: number, labels?: Labels): void;
}
export interface Gauge {
  set(value: number, labels?: Labels): void;
}
export interface Histogram {
  observe(value: number, labels?: Labels): void;
}

/** Custom metrics; each sample carries the model's name and version as labels. */
export interface Metrics {
  counter(name: string, help?: string): Counter;
  gauge(name: string, help?: string): Gauge;
  /** `buckets`: the upper bounds, ascending (default DEFAULT_BUCKETS, Prometheus's, in seconds). */
  histogram(name: string, help?: string, buckets?: readonly number[]): Histogram;
}

export interface Device {
  type: 'cpu' | 'gpu';
  /** The GPU index for `gpu`; undefined on CPU. */
  id: number | undefined;
}

/** Everything a handler knows about the model it serves. */
export interface HandlerContext<TConfig = Record<string, unknown>> {
  modelName: string;
  modelVersion: string;
  /** The unpacked archive folder: the ONNX file, extra files and the manifest are here. */
  modelDir: string;
  manifest: Manifest;
  /** The ONNX graph's inputs and outputs; undefined for archives without a model. */
  signature: Signature | undefined;
  config: ModelConfig & { handler: Readonly<TConfig> };
  device: Device;
  batchSize: number;
  /** ONNX Runtime providers to try, in order of preference, and threads per session. */
  executionProviders: readonly string[];
  intraOpNumThreads: number;
  logger: Logger;
  metrics: Metrics;
  /**
   * Milliseconds the batch in hand has spent in each phase. BaseHandler adds to it; a handler that
   * overrides handle() may too. The worker resets it before each batch and reports it to the
   * server, which shows it as `kiln_batch_seconds` in /metrics (and `kiln bench` reads it there).
   */
  timings: PhaseTimings;
}

/** Milliseconds spent in each phase of one batch; 0 for a phase the handler did not time. */
export interface PhaseTimings {
  preprocess: number;
  inference: number;
  postprocess: number;
}

/** What the server needs from a handler: a handle() over a batch, and an optional initialize(). */
export interface Handler<TAnswer = Answer> {
  initialize?(context: HandlerContext): void | Promise<void>;
  /** One result per request, in order; an Error at index i fails request i alone. */
  handle(requests: KilnRequest[], context: HandlerContext): (TAnswer | Error)[] | Promise<(TAnswer | Error)[]>;
  /**
   * Optional: explains a batch, for `POST /explanations/{m}` and KServe v1 `:explain` (TorchServe's
   * explain_handle). One result per request, in order, as handle(); a handler without it answers
   * those routes 501 KILN_ERR_NOT_IMPLEMENTED.
   */
  explain?(requests: KilnRequest[], context: HandlerContext): (Answer | Error)[] | Promise<(Answer | Error)[]>;
  /**
   * Optional: metadata about the model, a JSON object, for `GET /models/{m}?customized=true`
   * (TorchServe's describe_handle), which answers it as `customizedMetadata`.
   */
  describe?(context: HandlerContext): object | Promise<object>;
  /** Releases the ONNX session and anything else held; called when a worker stops. */
  dispose?(): void | Promise<void>;
}

export type { InferenceSession };
