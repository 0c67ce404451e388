/** Execution providers Kiln can ask ONNX Runtime for, in the spelling model-config.yaml uses. */
export const EXECUTION_PROVIDERS = ['cpu', 'cuda', 'tensorrt', 'webgpu'] as const;
export type ExecutionProvider = (typeof EXECUTION_PROVIDERS)[number];

/** How a model's workers are kept apart from the server: see docs/decisions/0004-worker-isolation.md. */
export const ISOLATION_MODES = ['thread', 'process'] as const;
export type Isolation = (typeof ISOLATION_MODES)[number];

const positiveInteger = { type: 'integer', minimum: 1 } as const;

/**
 * model-config.yaml as written: TorchServe's key names (and units: ms for maxBatchDelay and
 * clientTimeoutInMills, seconds for the two timeouts), plus Kiln's own keys.
 */
export const modelConfigSchema = {
  $id: 'https://kiln.dev/schemas/model-config.json',
  type: 'object',
  additionalProperties: false,
  properties: {
    minWorkers: positiveInteger,
    maxWorkers: positiveInteger,
    batchSize: { type: 'integer', minimum: 1, maximum: 4096 },
    maxBatchDelay: { type: 'integer', minimum: 0 },
    responseTimeout: positiveInteger,
    startupTimeout: positiveInteger,
    jobQueueSize: positiveInteger,
    clientTimeoutInMills: { type: 'integer', minimum: 0 },
    deviceType: { enum: ['cpu', 'gpu'] },
    deviceIds: { type: 'array', items: { type: 'integer', minimum: 0 }, uniqueItems: true },
    executionProviders: { type: 'array', items: { enum: EXECUTION_PROVIDERS }, minItems: 1, uniqueItems: true },
    intraOpNumThreads: positiveInteger,
    isolation: { enum: ISOLATION_MODES },
    workerHeapLimitMb: { type: 'integer', minimum: 16 },
    // Free-form, passed to the handler; an empty `handler:` (null) means no settings.
    handler: { type: ['object', 'null'] },
  },
} as const;

/** The file's keys, exactly as written. */
export interface ModelConfigFile {
  minWorkers?: number;
  maxWorkers?: number;
  batchSize?: number;
  maxBatchDelay?: number;
  responseTimeout?: number;
  startupTimeout?: number;
  jobQueueSize?: number;
  clientTimeoutInMills?: number;
  deviceType?: 'cpu' | 'gpu';
  deviceIds?: number[];
  executionProviders?: ExecutionProvider[];
  intraOpNumThreads?: number;
  isolation?: Isolation;
  workerHeapLimitMb?: number;
  handler?: Record<string, unknown> | null;
}

/** The resolved config the server and handlers use: every value set, units in the names. */
export interface ModelConfig {
  minWorkers: number;
  maxWorkers: number;
  batchSize: number;
  maxBatchDelayMs: number;
  responseTimeoutS: number;
  startupTimeoutS: number;
  jobQueueSize: number;
  /** 0 means requests never expire in the queue. */
  clientTimeoutMs: number;
  deviceType: 'cpu' | 'gpu';
  deviceIds: readonly number[];
  executionProviders: readonly ExecutionProvider[];
  /** Undefined lets the server divide the cores among the workers. */
  intraOpNumThreads: number | undefined;
  /** Undefined takes the server's default (`--isolation`). */
  isolation: Isolation | undefined;
  /** The JavaScript heap cap of each worker (MiB); undefined: V8's own limit. */
  workerHeapLimitMb: number | undefined;
  handler: Readonly<Record<string, unknown>>;
}

export const MODEL_CONFIG_DEFAULTS = Object.freeze({
  minWorkers: 1,
  batchSize: 1,
  maxBatchDelayMs: 100,
  responseTimeoutS: 120,
  startupTimeoutS: 120,
  jobQueueSize: 100,
  clientTimeoutMs: 0,
  deviceType: 'cpu',
} as const);
