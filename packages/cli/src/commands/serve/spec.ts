import type { CommandSpec } from '../../command-spec.js';
import type { ParsedOptions } from '../../util/parsed.js';

/** Each flag, the server config key it sets and how its value is read. Every key also has a KILN_* variable. */
export const SERVE_FLAGS = {
  models: {
    flags: '--models <models...>',
    key: 'models',
    description:
      'Models to load: name=path.mar (or .tar.gz, or a folder), a path, or all (every archive in --model-store). Env KILN_MODELS',
  },
  modelStore: {
    flags: '--model-store <dir>',
    key: 'modelStore',
    description: 'Folder that relative --models paths and all are read from. Env KILN_MODEL_STORE',
  },
  config: {
    flags: '--config <file>',
    key: undefined,
    description: 'Server config file, YAML or JSON (keys as in docs/reference/server-config.md). Env KILN_CONFIG',
  },
  inferenceAddress: {
    flags: '--inference-address <url>',
    key: 'inferenceAddress',
    description: 'Inference API address (default http://127.0.0.1:8080). Env KILN_INFERENCE_ADDRESS',
  },
  managementAddress: {
    flags: '--management-address <url>',
    key: 'managementAddress',
    description: 'Management API address (default http://127.0.0.1:8081). Env KILN_MANAGEMENT_ADDRESS',
  },
  metricsAddress: {
    flags: '--metrics-address <url>',
    key: 'metricsAddress',
    description: 'Metrics API address (default http://127.0.0.1:8082). Env KILN_METRICS_ADDRESS',
  },
  workers: {
    flags: '--workers <n>',
    key: 'workers',
    description: "Default workers per model; a model's minWorkers overrides it (default 1). Env KILN_WORKERS",
  },
  isolation: {
    flags: '--isolation <mode>',
    key: 'isolation',
    description:
      "Default isolation of model workers: thread (worker threads, fastest) or process (child processes, survive native crashes); a model's isolation overrides it (default thread). Env KILN_ISOLATION",
  },
  maxRequestSize: {
    flags: '--max-request-size <bytes>',
    key: 'maxRequestSize',
    description: 'Largest request body accepted, larger ones get 413 (default 6553500). Env KILN_MAX_REQUEST_SIZE',
  },
  jobQueueSize: {
    flags: '--job-queue-size <n>',
    key: 'jobQueueSize',
    description: "Default queue bound per model; a model's jobQueueSize overrides it (default 100). Env KILN_JOB_QUEUE_SIZE",
  },
  drainTimeout: {
    flags: '--drain-timeout <seconds>',
    key: 'drainTimeout',
    description: 'On SIGTERM or SIGINT, how long to answer accepted requests before stopping (default 30). Env KILN_DRAIN_TIMEOUT',
  },
  requestTimeout: {
    flags: '--request-timeout <seconds>',
    key: 'requestTimeout',
    description: "Node's limit for receiving a whole request (default 60). Env KILN_REQUEST_TIMEOUT",
  },
  headersTimeout: {
    flags: '--headers-timeout <seconds>',
    key: 'headersTimeout',
    description: "Node's limit for receiving request headers (default 20). Env KILN_HEADERS_TIMEOUT",
  },
  enableModelApi: {
    flags: '--enable-model-api',
    key: 'enableModelApi',
    description: 'Allow registering and unregistering models over the management API (off by default). Env KILN_ENABLE_MODEL_API=true',
  },
  allowedUrls: {
    flags: '--allowed-urls <patterns...>',
    key: 'allowedUrls',
    description: 'Regular expressions a register url outside the model store must match (none by default). Env KILN_ALLOWED_URLS',
  },
  tokenFile: {
    flags: '--token-file <file>',
    key: 'tokenFile',
    description: 'File whose first line is the bearer token clients must send (or set KILN_TOKEN). Env KILN_TOKEN_FILE',
  },
  authApis: {
    flags: '--auth-apis <apis...>',
    key: 'authApis',
    description: 'APIs the token protects: inference, management, metrics (default inference management). Env KILN_AUTH_APIS',
  },
  corsAllowedOrigins: {
    flags: '--cors-allowed-origins <origins...>',
    key: 'corsAllowedOrigins',
    description: 'Origins allowed to call the APIs from a browser (CORS is off by default). Env KILN_CORS_ALLOWED_ORIGINS',
  },
} as const;

const NUMERIC = new Set(['workers', 'maxRequestSize', 'jobQueueSize', 'drainTimeout', 'requestTimeout', 'headersTimeout']);

/** Commander's option values → server config keys; numbers parsed (a bad one is reported by the schema). */
export function flagsToConfig(options: ParsedOptions): Record<string, unknown> {
  const given = new Map(options.entries());
  const config: Record<string, unknown> = {};
  for (const [option, spec] of Object.entries(SERVE_FLAGS)) {
    if (given.get(option) === undefined || spec.key === undefined) continue;
    // --models a.mar,b.mar and --models a.mar b.mar mean the same, as in KILN_MODELS.
    config[spec.key] = NUMERIC.has(spec.key)
      ? Number(given.get(option))
      : spec.key === 'models'
        ? (options.optionalList(option) ?? []).flatMap((v) => v.split(',')).filter(Boolean)
        : given.get(option);
  }
  return config;
}

export const serveCommand: CommandSpec = {
  name: 'serve',
  summary: 'Serve model archives over HTTP (TorchServe inference API)',
  description:
    'Loads each archive into worker threads (or processes) and serves it with dynamic batching. Runs in the foreground; SIGTERM or SIGINT drains accepted requests and exits 0. Precedence: flags > KILN_* environment > --config file > defaults. Every address binds to 127.0.0.1 unless told otherwise.',
  options: Object.values(SERVE_FLAGS).map(({ flags, description }) => ({ flags, description })),
  load: () => import('./cli.js'),
};
