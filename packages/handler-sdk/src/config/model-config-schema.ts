/** Execution providers Kiln can ask ONNX Runtime for, in the spelling model-config.yaml uses. */
export const EXECUTION_PROVIDERS = ['cpu', 'cuda', 'tensorrt', 'webgpu'] as const;
export type ExecutionProvider = (typeof EXECUTION_PROVIDERS)[number];

/** How a model's workers are kept apart from the server: see docs/decisions/0004-worker-isolation.md. */
export const ISOLATION_MODES = ['thread', 'process'] as const;
export type Isolation = (typeof ISOLATION_MODES)[number];

/** One model-config.yaml key: its schema, and its row in docs/reference/model-config.md. `T` is its type in the file. */
export interface ModelConfigKey<T> {
  schema: Readonly<Record<string, unknown>>;
  /** The docs' columns. */
  type: string;
  default: string;
  unit: string;
  meaning: string;
  torchServe: string;
  /** Only for the type: never set. */
  readonly value?: T;
}

const key = <T>(schema: Record<string, unknown>, docs: Omit<ModelConfigKey<T>, 'schema' | 'value'>): ModelConfigKey<T> => ({
  schema,
  ...docs,
});
const integer = (minimum: number, maximum?: number) => ({ type: 'integer', minimum, ...(maximum === undefined ? {} : { maximum }) });

/**
 * Every model-config.yaml key, once: TorchServe's key names (and units: ms for maxBatchDelay and
 * clientTimeoutInMills, seconds for the two timeouts), plus Kiln's own keys. The schema, the
 * ModelConfigFile type and the Keys table of docs/reference/model-config.md (npm run docs:model-config)
 * are derived from it.
 */
export const MODEL_CONFIG_KEYS = {
  minWorkers: key<number>(integer(0, 256), {
    type: 'integer 0–256',
    default: '`1`',
    unit: 'workers',
    meaning:
      'Workers kept running for the model. `0`: none until a request comes; that request starts one and waits for it, and the worker is stopped again after `scaleDownAfter` with nothing to do.',
    torchServe:
      'Same, except that TorchServe answers 503 to a model with no workers instead of starting one. Its default is one worker per GPU, or per CPU core without GPUs.',
  }),
  maxWorkers: key<number>(integer(1, 256), {
    type: 'integer 1–256, and ≥ `minWorkers`',
    default: '`minWorkers`, at least 1',
    unit: 'workers',
    meaning:
      'The most workers the model may have. Above `minWorkers`, a worker is added each time requests have waited with every worker busy for `scaleUpAfter`, and the extra workers are stopped after `scaleDownAfter` with nothing to do. See [batching and scaling](../guides/batching-and-scaling.md#autoscaling).',
    torchServe: 'TorchServe records `maxWorkers` and never starts more than `minWorkers`. Kiln refuses a `maxWorkers` below `minWorkers`.',
  }),
  scaleUpAfter: key<number>(integer(1), {
    type: 'integer ≥ 1',
    default: '`1000`',
    unit: 'ms',
    meaning:
      'How long requests must keep waiting, with every worker busy and none starting, before another worker is started (up to `maxWorkers`).',
    torchServe: 'Kiln only',
  }),
  scaleDownAfter: key<number>(integer(1), {
    type: 'integer ≥ 1',
    default: '`60`',
    unit: 's',
    meaning: 'How long the model must have nothing queued or running before its workers above `minWorkers` are stopped.',
    torchServe: 'Kiln only',
  }),
  batchSize: key<number>(integer(1, 4096), {
    type: 'integer 1–4096',
    default: '`1`',
    unit: 'requests',
    meaning: 'The most requests sent to a worker as one batch.',
    torchServe: 'No upper bound in TorchServe.',
  }),
  maxBatchDelay: key<number | 'auto'>(
    { anyOf: [integer(0), { const: 'auto' }] },
    {
      type: 'integer ≥ 0, or `auto`',
      default: '`100`',
      unit: 'ms',
      meaning:
        'The longest a request waits for its batch to fill. The wait counts from when the oldest request in the batch arrived, and a batch is sent as soon as a worker is free and either `batchSize` requests are waiting or that wait has passed. `auto`: the server learns what a batch costs and how often requests come, and holds a request only while that is expected to pay off; a lone request is never held. See [batching and scaling](../guides/batching-and-scaling.md#adaptive-batching).',
      torchServe: 'TorchServe counts the delay from when a worker takes the first request off the queue. `auto` is Kiln only.',
    },
  ),
  maxLatencyMs: key<number>(integer(1), {
    type: 'integer ≥ 1',
    default: 'unset: as long as a batch costs to run',
    unit: 'ms',
    meaning: 'With `maxBatchDelay: auto`, the longest a request may be held for its batch. Ignored otherwise.',
    torchServe: 'Kiln only',
  }),
  responseTimeout: key<number>(integer(1), {
    type: 'integer ≥ 1',
    default: '`120`',
    unit: 's',
    meaning: 'How long a worker may take to answer one batch.',
    torchServe: 'Same',
  }),
  startupTimeout: key<number>(integer(1), {
    type: 'integer ≥ 1',
    default: '`120`',
    unit: 's',
    meaning: 'How long a worker may take to load the model.',
    torchServe: 'Same',
  }),
  jobQueueSize: key<number>(integer(1), {
    type: 'integer ≥ 1',
    default: '`100`',
    unit: 'requests',
    meaning: 'Requests that may wait for the model. When the queue is full, a request is answered 503 with `Retry-After`.',
    torchServe: "Same; overrides the server's `job_queue_size`.",
  }),
  clientTimeoutInMills: key<number>(integer(0), {
    type: 'integer ≥ 0',
    default: '`0`',
    unit: 'ms',
    meaning:
      "A request that has waited longer than this in the queue is dropped instead of run. `0` means never. The key keeps TorchServe's spelling.",
    torchServe: 'Same',
  }),
  deviceType: key<'cpu' | 'gpu'>(
    { enum: ['cpu', 'gpu'] },
    {
      type: '`cpu` or `gpu`',
      default: '`cpu`',
      unit: '—',
      meaning:
        'Where the model runs. It also sets the defaults of `executionProviders`, `intraOpNumThreads` (1 on a GPU), `batchSize` (8 on a GPU) and `maxBatchDelay` (`auto` on a GPU).',
      torchServe: 'TorchServe also accepts other cases (`GPU`). Without the key it uses GPUs when it finds any.',
    },
  ),
  deviceIds: key<number[]>(
    { type: 'array', items: { type: 'integer', minimum: 0 }, uniqueItems: true },
    {
      type: 'list of distinct integers ≥ 0',
      default: '`[]`',
      unit: 'GPU ids',
      meaning:
        "The GPUs the model's workers use, round-robin. Empty: the server's GPUs (`numberOfGpu`), shared round-robin among all GPU models' workers. Not checked against `deviceType`.",
      torchServe: 'Same',
    },
  ),
  executionProviders: key<ExecutionProvider[]>(
    { type: 'array', items: { enum: EXECUTION_PROVIDERS }, minItems: 1, uniqueItems: true },
    {
      type: 'non-empty list of distinct values from `cpu`, `cuda`, `tensorrt`, `webgpu`',
      default: '`[cpu]`, or `[cuda, cpu]` when `deviceType` is `gpu`',
      unit: '—',
      meaning:
        "ONNX Runtime execution providers, in order of preference. The server tries them in that order and runs on the first that loads on this machine; describe, the v2 config, the status page and the metrics show that one. `cuda` and `tensorrt` need onnxruntime-node's CUDA provider (`npm run install:gpu`); the bundled Linux binary includes `webgpu`, which needs a Vulkan driver. See [gpu.md](../guides/gpu.md).",
      torchServe: 'Kiln only',
    },
  ),
  fallback: key<boolean>(
    { type: 'boolean' },
    {
      type: 'boolean',
      default: '`true`',
      unit: '—',
      meaning:
        "Whether a model that asks for GPU providers may run on the CPU when none of them loads here. `true`: one warning names the missing library and the fix, and the model runs on `cpu`. `false`: the model's load fails with `KILN_ERR_PROVIDER_UNAVAILABLE`, naming what is missing.",
      torchServe: 'Kiln only',
    },
  ),
  intraOpNumThreads: key<number>(integer(1), {
    type: 'integer ≥ 1',
    default:
      "unset: the server gives each worker the machine's cores less one (for the server's HTTP thread), divided by the number of workers, at least 1",
    unit: 'threads',
    meaning: 'ONNX Runtime intra-op threads per worker session. Why this default: [performance guide](../guides/performance.md#threads).',
    torchServe: 'Kiln only',
  }),
  isolation: key<Isolation>(
    { enum: ISOLATION_MODES },
    {
      type: '`thread` or `process`',
      default: "unset: the server's `isolation` (`--isolation`, default `thread`)",
      unit: '—',
      meaning:
        "What the model's workers are. `thread`: threads of the server's process; batches cross without a copy, but a native crash (in an addon or in ONNX Runtime) ends the whole server. `process`: a child process per worker; a native crash ends only that worker. See [lifecycle.md](lifecycle.md#workers) and [0004-worker-isolation.md](../decisions/0004-worker-isolation.md).",
      torchServe: 'Kiln only',
    },
  ),
  workerHeapLimitMb: key<number>(integer(16), {
    type: 'integer ≥ 16',
    default: "unset: V8's own limit",
    unit: 'MiB',
    meaning:
      "The JavaScript heap cap of each worker: `resourceLimits.maxOldGenerationSizeMb` for a thread, `--max-old-space-size` for a process. A worker that outgrows it ends; its batch gets 500 `KILN_ERR_WORKER_DIED` and the worker is restarted. Native memory (ONNX Runtime's, sharp's) is not capped by it.",
    torchServe: 'Kiln only',
  }),
  allowNonFinite: key<boolean>(
    { type: 'boolean' },
    {
      type: 'boolean',
      default: '`false`',
      unit: '—',
      meaning:
        "Whether binary (v2 `binary_data_size`) FP16, FP32 and FP64 inputs may hold NaN or ±Infinity. Off: such a value is refused with 400 `KILN_ERR_BAD_REQUEST` naming the input and the element. JSON values must be finite numbers within the datatype's range either way (`1e39` is refused for FP32, not rounded to Infinity). See [kserve-v2.md](kserve-v2.md#nan-and-infinity).",
      torchServe: 'Kiln only',
    },
  ),
  // Free-form, passed to the handler; an empty `handler:` (null) means no settings.
  handler: key<Record<string, unknown> | null>(
    { type: ['object', 'null'] },
    {
      type: 'mapping, any content',
      default: '`{}`',
      unit: '—',
      meaning: 'Settings for the handler, passed to it unchanged. Kiln does not check what is inside.',
      torchServe:
        'TorchServe passes every top-level key it does not know to the handler (`context.model_yaml_config`). Kiln passes only `handler:`.',
    },
  ),
};

type KeyValue<K> = K extends ModelConfigKey<infer T> ? T : never;

/** The file's keys, exactly as written (derived from MODEL_CONFIG_KEYS). */
export type ModelConfigFile = { [K in keyof typeof MODEL_CONFIG_KEYS]?: KeyValue<(typeof MODEL_CONFIG_KEYS)[K]> };

export const modelConfigSchema = {
  $id: 'https://kiln.dev/schemas/model-config.json',
  type: 'object',
  additionalProperties: false,
  properties: Object.fromEntries(Object.entries(MODEL_CONFIG_KEYS).map(([name, k]) => [name, k.schema])),
} as const;

/** The Keys table of docs/reference/model-config.md. */
export function renderModelConfigTable(): string {
  const rows = Object.entries(MODEL_CONFIG_KEYS).map(
    ([name, k]) => `| \`${name}\` | ${k.type} | ${k.default} | ${k.unit} | ${k.meaning} | ${k.torchServe} |`,
  );
  return ['| key | type and range | default | unit | meaning | TorchServe |', '|---|---|---|---|---|---|', ...rows].join('\n');
}

/** The resolved config the server and handlers use: every value set, units in the names. */
export interface ModelConfig {
  /** 0: workers start on demand. */
  minWorkers: number;
  /** ≥ 1 and ≥ minWorkers; above minWorkers the pool autoscales. */
  maxWorkers: number;
  scaleUpAfterMs: number;
  scaleDownAfterS: number;
  batchSize: number;
  /** A fixed wait, or 'auto' (held only while it pays off). */
  maxBatchDelayMs: number | 'auto';
  /** With 'auto': the longest a request may be held; undefined: as long as a batch costs. */
  maxLatencyMs: number | undefined;
  responseTimeoutS: number;
  startupTimeoutS: number;
  jobQueueSize: number;
  /** 0 means requests never expire in the queue. */
  clientTimeoutMs: number;
  deviceType: 'cpu' | 'gpu';
  deviceIds: readonly number[];
  executionProviders: readonly ExecutionProvider[];
  /** May the model run on the CPU when none of its GPU providers loads? */
  fallback: boolean;
  /** Undefined lets the server divide the cores among the workers (GPU models: 1 each). */
  intraOpNumThreads: number | undefined;
  /** Undefined takes the server's default (`--isolation`). */
  isolation: Isolation | undefined;
  /** The JavaScript heap cap of each worker (MiB); undefined: V8's own limit. */
  workerHeapLimitMb: number | undefined;
  /** Whether binary float inputs may carry NaN or ±Infinity. */
  allowNonFinite: boolean;
  handler: Readonly<Record<string, unknown>>;
}

export const MODEL_CONFIG_DEFAULTS = Object.freeze({
  minWorkers: 1,
  scaleUpAfterMs: 1000,
  scaleDownAfterS: 60,
  batchSize: 1,
  maxBatchDelayMs: 100,
  responseTimeoutS: 120,
  startupTimeoutS: 120,
  jobQueueSize: 100,
  clientTimeoutMs: 0,
  deviceType: 'cpu',
} as const);
