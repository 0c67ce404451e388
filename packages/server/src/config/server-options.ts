import { ISOLATION_MODES, type Isolation } from '@kiln/handler-sdk/runtime';
import { DEFAULT_BATCH_SIZE_BUCKETS, DEFAULT_LATENCY_BUCKETS } from '../observability/buckets.js';
import { address, boolean, integer, list, numbers, oneOf, option, text, words, type ServerOption } from './option-kinds.js';

/*
 * Every server option, once: its JSON schema, its default, its flag, its KILN_* variable, how a
 * variable's text and a flag's value are read, and its row in docs/reference/server-config.md.
 * The config schema, the defaults, the TypeScript type of the config file, the `kiln serve` flags and
 * the docs table are all derived from this table (a test keeps the docs in step).
 */

export const API_NAMES = ['inference', 'management', 'metrics'] as const;
export type ApiName = (typeof API_NAMES)[number];

export type { ServerOption } from './option-kinds.js';

export const SERVER_OPTIONS = {
  models: option(list('list of non-empty strings', { type: 'string', minLength: 1 }), {
    default: [],
    flag: '--models <models...>',
    env: 'KILN_MODELS',
    unit: '—',
    help: 'Models to load: name=path.mar (or .tar.gz, or a folder), a path, or all (every archive in --model-store)',
    meaning: 'The models to load at start. See [Models to load](#models-to-load).',
  }),
  modelStore: option(text('non-empty string'), {
    flag: '--model-store <dir>',
    env: 'KILN_MODEL_STORE',
    unit: '—',
    help: 'Folder that relative --models paths and all are read from',
    meaning:
      "A folder. Relative `--models` paths are looked for here first, `--models all` loads every archive in it, and the management API's `url` names files in it. A relative path is taken from the current folder.",
  }),
  inferenceAddress: option(address, {
    default: 'http://127.0.0.1:8080',
    flag: '--inference-address <url>',
    env: 'KILN_INFERENCE_ADDRESS',
    unit: '—',
    help: 'Inference API address',
    meaning: 'Where the inference API listens ([inference-api.md](inference-api.md)).',
  }),
  managementAddress: option(address, {
    default: 'http://127.0.0.1:8081',
    flag: '--management-address <url>',
    env: 'KILN_MANAGEMENT_ADDRESS',
    unit: '—',
    help: 'Management API address',
    meaning: 'Where the management API listens ([management-api.md](management-api.md)).',
  }),
  metricsAddress: option(address, {
    default: 'http://127.0.0.1:8082',
    flag: '--metrics-address <url>',
    env: 'KILN_METRICS_ADDRESS',
    unit: '—',
    help: 'Metrics API address',
    meaning: 'Where the metrics API listens ([inference-api.md](inference-api.md#metrics)).',
  }),
  grpcAddress: option(
    text('`host:port` (`[::1]:port` for IPv6), or `off`', { pattern: '^(off|(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9.-]+):[0-9]{1,5})$' }),
    {
      default: '127.0.0.1:8085',
      flag: '--grpc-address <host:port|off>',
      env: 'KILN_GRPC_ADDRESS',
      unit: '—',
      help: 'KServe v2 gRPC API address (inference.GRPCInferenceService), or off',
      meaning:
        "Where the KServe v2 gRPC API (`inference.GRPCInferenceService`, with Triton's additions) listens ([grpc.md](grpc.md)). `off`: not served. gRPC's libraries are loaded only when a gRPC API is on (this one, `tsGrpcInferenceAddress` or `tsGrpcManagementAddress`).",
    },
  ),
  tsGrpcInferenceAddress: option(
    text('`host:port` (`[::1]:port` for IPv6), or `off`', { pattern: '^(off|(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9.-]+):[0-9]{1,5})$' }),
    {
      default: '127.0.0.1:7070',
      flag: '--ts-grpc-inference-address <host:port|off>',
      env: 'KILN_TS_GRPC_INFERENCE_ADDRESS',
      unit: '—',
      help: "TorchServe's gRPC inference API address (org.pytorch.serve.grpc.inference), or off",
      meaning:
        "Where TorchServe's gRPC inference API (`InferenceAPIsService` of TorchServe's `inference.proto`: Ping, Predictions, StreamPredictions) listens ([grpc.md](grpc.md#torchserves-grpc-apis)). `off`: not served.",
    },
  ),
  tsGrpcManagementAddress: option(
    text('`host:port` (`[::1]:port` for IPv6), or `off`', { pattern: '^(off|(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9.-]+):[0-9]{1,5})$' }),
    {
      default: '127.0.0.1:7071',
      flag: '--ts-grpc-management-address <host:port|off>',
      env: 'KILN_TS_GRPC_MANAGEMENT_ADDRESS',
      unit: '—',
      help: "TorchServe's gRPC management API address (org.pytorch.serve.grpc.management), or off",
      meaning:
        "Where TorchServe's gRPC management API (`ManagementAPIsService` of TorchServe's `management.proto`) listens ([grpc.md](grpc.md#torchserves-grpc-apis)). `off`: not served. Registering and unregistering need `enableModelApi`, as over HTTP.",
    },
  ),
  workers: option(integer(1, 256), {
    default: 1,
    flag: '--workers <n>',
    env: 'KILN_WORKERS',
    unit: 'workers',
    help: "Default workers per model; a model's minWorkers overrides it",
    meaning: 'Workers started for each model version whose `model-config.yaml` has no `minWorkers`.',
  }),
  isolation: option<Isolation>(oneOf(ISOLATION_MODES), {
    default: 'thread',
    flag: '--isolation <mode>',
    env: 'KILN_ISOLATION',
    unit: '—',
    help: "Default isolation of model workers: thread (worker threads, fastest) or process (child processes, survive native crashes); a model's isolation overrides it",
    meaning:
      "What the workers of a model version whose `model-config.yaml` has no `isolation` are: threads of the server's process (batches cross without a copy; a native crash ends the whole server) or child processes (a native crash ends only that worker). See [lifecycle.md](lifecycle.md#workers) and [0004-worker-isolation.md](../decisions/0004-worker-isolation.md).",
  }),
  numberOfGpu: option(integer(0, 1024), {
    flag: '--number-of-gpu <n>',
    env: 'KILN_NUMBER_OF_GPU',
    unit: 'GPUs',
    help: 'GPUs the workers of GPU models share, round-robin (default: those nvidia-smi lists)',
    meaning:
      "The GPUs (ids 0 to n − 1) that the workers of `deviceType: gpu` models without `deviceIds` take, round-robin, each model starting where the one before left off. Unset: as many as `CUDA_VISIBLE_DEVICES` names when it is set, else the GPUs `nvidia-smi` lists, asked once when the first GPU model loads; none when it is not there. TorchServe's `number_of_gpu`. See [gpu.md](../guides/gpu.md#devices).",
  }),
  probeProviders: option(boolean, {
    default: true,
    flag: '--no-probe-providers',
    env: 'KILN_PROBE_PROVIDERS',
    unit: '—',
    help: 'Do not find out and log, at start, which execution providers load on this machine',
    meaning:
      'On (the default): once the models are up, the server finds out in a child process which ONNX Runtime execution providers load on this machine (`cpu`, `webgpu`, `cuda`, `tensorrt`) and logs them once, each missing one with its reason. Off: only when a model asks for a provider other than `cpu`, which always happens. See [gpu.md](../guides/gpu.md#providers).',
  }),
  maxResponseSize: option(integer(1), {
    default: 6_553_500,
    flag: '--max-response-size <bytes>',
    env: 'KILN_MAX_RESPONSE_SIZE',
    unit: 'bytes',
    help: 'Largest answer a handler may send, larger ones become 500',
    meaning:
      "The largest answer body a handler may send, as TorchServe's `max_response_size`. A larger one is not sent: the client gets 500 `KILN_ERR_RESPONSE_TOO_LARGE` naming the size, and the server logs it. For a v2 answer, the JSON and the binary outputs added up; for a v1 answer, all predictions.",
  }),
  maxRequestSize: option(integer(1), {
    default: 6_553_500,
    flag: '--max-request-size <bytes>',
    env: 'KILN_MAX_REQUEST_SIZE',
    unit: 'bytes',
    help: 'Largest request body accepted, larger ones get 413',
    meaning:
      "The largest request body any API accepts. A larger one is answered 413 `KILN_ERR_REQUEST_TOO_LARGE`. For a multipart request, the parts' contents added up (see [inference-api.md](inference-api.md#request-bodies)).",
  }),
  jobQueueSize: option(integer(1), {
    default: 100,
    flag: '--job-queue-size <n>',
    env: 'KILN_JOB_QUEUE_SIZE',
    unit: 'requests',
    help: "Default queue bound per model; a model's jobQueueSize overrides it",
    meaning: 'The queue bound of each model version whose `model-config.yaml` has no `jobQueueSize`.',
  }),
  drainTimeout: option(integer(0), {
    default: 30,
    flag: '--drain-timeout <seconds>',
    env: 'KILN_DRAIN_TIMEOUT',
    unit: 's',
    help: 'On SIGTERM or SIGINT, how long to answer accepted requests before stopping',
    meaning: 'On SIGTERM or SIGINT, how long to wait for accepted requests to be answered. See [Shutdown](#shutdown).',
  }),
  requestTimeout: option(integer(1), {
    default: 60,
    flag: '--request-timeout <seconds>',
    env: 'KILN_REQUEST_TIMEOUT',
    unit: 's',
    help: "Node's limit for receiving a whole request",
    meaning: "Node's `server.requestTimeout`: the time a client has to send a whole request. See [Node's timeouts](#nodes-timeouts).",
  }),
  headersTimeout: option(integer(1), {
    default: 20,
    flag: '--headers-timeout <seconds>',
    env: 'KILN_HEADERS_TIMEOUT',
    unit: 's',
    help: "Node's limit for receiving request headers",
    meaning: "Node's `server.headersTimeout`: the time a client has to send a request's headers.",
  }),
  enableModelApi: option(boolean, {
    default: false,
    flag: '--enable-model-api',
    env: 'KILN_ENABLE_MODEL_API',
    unit: '—',
    help: "Allow registering and unregistering models over the management API, and Triton's repository routes",
    meaning:
      "Allows registering and unregistering models over the management API, and Triton's model repository routes (`/v2/repository/index`, `load`, `unload`: [kserve-v2.md](kserve-v2.md#model-repository)).",
  }),
  allowPartialStart: option(boolean, {
    default: false,
    flag: '--allow-partial-start',
    env: 'KILN_ALLOW_PARTIAL_START',
    unit: '—',
    help: 'Report ready when the models that loaded are ready, even if one given at start was refused or never got a worker up',
    meaning:
      'Off (the default): `/ping` and `/v2/health/ready` answer unhealthy until every model given at start is ready, and stay unhealthy when one was refused or none of its workers could load. On: such a model no longer counts (its own ready route still says 503); models still loading always count, and so does a model that served and then failed.',
  }),
  allowedUrls: option(
    list('list of regular expressions', { type: 'string', minLength: 1 }, (raw) => raw.split(/\s+/).filter(Boolean)),
    {
      default: [],
      flag: '--allowed-urls <patterns...>',
      env: 'KILN_ALLOWED_URLS',
      unit: '—',
      help: 'Regular expressions a register url outside the model store must match',
      meaning: 'A `url` given to the management API that is not a file in the model store must match one of these, as a whole.',
    },
  ),
  tokenFile: option(text('non-empty string'), {
    flag: '--token-file <file>',
    env: 'KILN_TOKEN_FILE',
    unit: '—',
    help: 'File whose first line is the bearer token clients must send (or set KILN_TOKEN)',
    meaning:
      'A file whose first line is the bearer token clients must send. `KILN_TOKEN` holds the token itself instead; the file wins when both are set. A token must have at least 16 characters.',
  }),
  authApis: option<ApiName[]>(
    list<ApiName>('list of `inference`, `management`, `metrics`, each at most once', { enum: API_NAMES }, words, { uniqueItems: true }),
    {
      default: ['inference', 'management'],
      flag: '--auth-apis <apis...>',
      env: 'KILN_AUTH_APIS',
      unit: '—',
      help: 'APIs the token protects: inference, management, metrics',
      meaning: 'The APIs the token protects. Without a token it protects nothing.',
    },
  ),
  healthAuth: option(oneOf(['on', 'off'] as const), {
    default: 'on',
    flag: '--health-auth <on|off>',
    env: 'KILN_HEALTH_AUTH',
    unit: '—',
    help: 'Whether /ping, /v2/health/live and /v2/health/ready need the token when the inference API has one',
    meaning:
      "`on`: the token, where the inference API has one, guards its health routes too. `off`: `/ping`, `/v2/health/live` and `/v2/health/ready` answer without it, so that a load balancer's or kubelet's probe, which cannot send a secret, works. The risk: anyone who can reach the port learns whether the server is up and ready, and the problems `/ping` lists (model names and load errors). Nothing else opens: predictions, model metadata and every other route still need the token. See [security.md](../guides/security.md#health-probes).",
  }),
  latencyBuckets: option(numbers('list of numbers > 0, ascending', { type: 'number', exclusiveMinimum: 0 }), {
    default: [...DEFAULT_LATENCY_BUCKETS],
    flag: '--latency-buckets <seconds...>',
    env: 'KILN_LATENCY_BUCKETS',
    unit: 'seconds',
    help: 'Upper bounds of the request, queue and batch duration histograms',
    meaning:
      'The bucket upper bounds of `kiln_request_seconds`, `kiln_queue_seconds` and `kiln_batch_seconds` ([metrics.md](metrics.md)), ascending; `+Inf` is always added.',
  }),
  batchSizeBuckets: option(numbers('list of numbers > 0, ascending', { type: 'number', exclusiveMinimum: 0 }), {
    default: [...DEFAULT_BATCH_SIZE_BUCKETS],
    flag: '--batch-size-buckets <sizes...>',
    env: 'KILN_BATCH_SIZE_BUCKETS',
    unit: 'requests',
    help: 'Upper bounds of the batch size histogram',
    meaning: 'The bucket upper bounds of `kiln_batch_size` ([metrics.md](metrics.md)), ascending; `+Inf` is always added.',
  }),
  torchserveMetrics: option<'on' | 'off'>(oneOf(['on', 'off']), {
    default: 'on',
    flag: '--torchserve-metrics <on|off>',
    env: 'KILN_TORCHSERVE_METRICS',
    unit: '—',
    help: "Also write TorchServe's metric names (ts_inference_requests_total, Requests2XX, QueueTime…)",
    meaning:
      "`on`: `/metrics` also has TorchServe's families, with its names and labels, so that dashboards built for TorchServe keep working ([metrics.md](metrics.md#torchserves-names)). `off`: only Kiln's.",
  }),
  logFormat: option<'json' | 'pretty'>(oneOf(['json', 'pretty']), {
    flag: '--log-format <json|pretty>',
    env: 'KILN_LOG_FORMAT',
    unit: '—',
    help: 'Server and model log lines as JSON, or pretty for people (default: pretty on a terminal, else json)',
    meaning:
      '`json`: one JSON object a line (`level`, `time`, `msg` and fields). `pretty`: a time, a level and the message, coloured on a terminal. Unset: `pretty` when stdout is a terminal, `json` otherwise ([observability.md](../guides/observability.md#logs)).',
  }),
  logLevel: option<'debug' | 'info' | 'warn' | 'error'>(oneOf(['debug', 'info', 'warn', 'error']), {
    default: 'info',
    flag: '--log-level <level>',
    env: 'KILN_LOG_LEVEL',
    unit: '—',
    help: 'The least severe log lines written: debug, info, warn or error',
    meaning:
      "The least severe lines written, by the server and by handlers' `context.logger` (whose lower lines are dropped in the worker, before they cross to the server).",
  }),
  accessLog: option(text('`off`, `stdout`, or a file'), {
    default: 'off',
    flag: '--access-log <off|stdout|file>',
    env: 'KILN_ACCESS_LOG',
    unit: '—',
    help: 'One JSON line per request: off, stdout, or a file to append to',
    meaning:
      'Where the access log goes: one JSON line per request on every API (time, request id, remote address, method, path without its query, model, version, status, error code, bytes in and out, queue ms, batch size, total ms). Never a body or a header value. A relative file is taken from the current folder.',
  }),
  logDir: option(text('non-empty string'), {
    flag: '--log-dir <folder>',
    env: 'KILN_LOG_DIR',
    unit: '—',
    help: "Also write the server log to kiln.log there, and each model's log to models/<name>.log",
    meaning:
      'Unset: every log line goes to stdout, a model\'s tagged `"log":"model"` and with its name. Set: the server log also goes to `kiln.log` in this folder, and each model\'s log (its workers\' output and `context.logger` lines, tagged with the worker) to `models/<name>.log` instead of stdout.',
  }),
  snapshot: option(boolean, {
    default: true,
    flag: '--no-snapshot',
    env: 'KILN_SNAPSHOT',
    unit: '—',
    help: 'Do not write or restore the snapshot of models registered and scaled over the management API',
    meaning:
      "On (the default): each register, scale, unregister and set-default over the management API rewrites `snapshot.json` in `stateDir`, and the next start restores it. See [Snapshot](#snapshot). `--no-snapshot` is TorchServe's `--ncs`.",
  }),
  stateDir: option(text('non-empty string'), {
    default: '.kiln',
    flag: '--state-dir <folder>',
    env: 'KILN_STATE_DIR',
    unit: '—',
    help: 'Folder of the server state kept across restarts (the snapshot)',
    meaning: 'Where the server keeps what must outlive it: the [snapshot](#snapshot). A relative path is taken from the current folder.',
  }),
  corsAllowedOrigins: option(list('list of non-empty strings', { type: 'string', minLength: 1 }), {
    default: [],
    flag: '--cors-allowed-origins <origins...>',
    env: 'KILN_CORS_ALLOWED_ORIGINS',
    unit: '—',
    help: 'Origins allowed to call the APIs from a browser (CORS is off by default)',
    meaning: 'Origins allowed to call the APIs from a browser. `*` allows any. Empty: no CORS headers are sent.',
  }),
};

export type ServerOptionKey = keyof typeof SERVER_OPTIONS;
type ValueOf<O> = O extends ServerOption<infer T> ? T : never;

/** The server config file (YAML or JSON), as written; every key also has a flag and a KILN_* variable. */
export type ServerConfigFile = { [K in ServerOptionKey]?: ValueOf<(typeof SERVER_OPTIONS)[K]> };

const entries = Object.entries(SERVER_OPTIONS) as [ServerOptionKey, ServerOption<unknown>][];

export const serverConfigSchema = {
  $id: 'https://kiln.dev/schemas/server-config.json',
  type: 'object',
  additionalProperties: false,
  properties: Object.fromEntries(entries.map(([key, o]) => [key, o.schema])),
} as const;

export const SERVER_DEFAULTS: Readonly<ServerConfigFile> = Object.freeze(
  Object.fromEntries(entries.filter(([, o]) => o.default !== undefined).map(([key, o]) => [key, o.default])),
);

/** `kiln serve --help`'s line for an option: its help, its default, its variable. */
export function optionHelp(o: ServerOption<unknown>): string {
  const fallback = Array.isArray(o.default) ? (o.default.length === 0 ? undefined : o.default.join(' ')) : o.default;
  // A `--no-x` switch turns off what is on by default: "(default true)" would only confuse.
  const shown = fallback === undefined || fallback === false || o.flag.startsWith('--no-') ? '' : ` (default ${String(fallback)})`;
  return `${o.help}${shown}. Env ${o.env}`;
}

/** The Keys table of docs/reference/server-config.md. */
export function renderServerOptionsTable(): string {
  const show = (value: unknown) =>
    value === undefined ? 'unset' : Array.isArray(value) ? `\`[${value.join(', ')}]\`` : `\`${String(value)}\``;
  const rows = entries.map(
    ([key, o]) => `| \`${key}\` | \`${o.flag}\` | \`${o.env}\` | ${o.type} | ${show(o.default)} | ${o.unit} | ${o.meaning} |`,
  );
  return ['| file key | flag | variable | type and range | default | unit | meaning |', '|---|---|---|---|---|---|---|', ...rows].join(
    '\n',
  );
}
