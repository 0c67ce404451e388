import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { createRequire } from 'node:module';
import { ISOLATION_MODES, compileSchema, formatErrors, type Isolation } from '@kiln/handler-sdk/runtime';
import { serverError } from '../errors.js';

/** The server config file (YAML or JSON), as written. Every key also has a flag and a KILN_* variable. */
export interface ServerConfigFile {
  models?: string[];
  modelStore?: string;
  inferenceAddress?: string;
  managementAddress?: string;
  metricsAddress?: string;
  workers?: number;
  isolation?: Isolation;
  maxRequestSize?: number;
  jobQueueSize?: number;
  drainTimeout?: number;
  requestTimeout?: number;
  headersTimeout?: number;
  enableModelApi?: boolean;
  allowedUrls?: string[];
  tokenFile?: string;
  authApis?: ApiName[];
  corsAllowedOrigins?: string[];
}

export const API_NAMES = ['inference', 'management', 'metrics'] as const;
export type ApiName = (typeof API_NAMES)[number];

export const serverConfigSchema = {
  $id: 'https://kiln.dev/schemas/server-config.json',
  type: 'object',
  additionalProperties: false,
  properties: {
    models: { type: 'array', items: { type: 'string', minLength: 1 } },
    modelStore: { type: 'string', minLength: 1 },
    // Plain HTTP only: TLS belongs to a reverse proxy in front (docs/guides/security.md).
    inferenceAddress: { type: 'string', pattern: '^http://' },
    managementAddress: { type: 'string', pattern: '^http://' },
    metricsAddress: { type: 'string', pattern: '^http://' },
    workers: { type: 'integer', minimum: 1, maximum: 256 },
    isolation: { enum: ISOLATION_MODES },
    maxRequestSize: { type: 'integer', minimum: 1 },
    jobQueueSize: { type: 'integer', minimum: 1 },
    drainTimeout: { type: 'integer', minimum: 0 },
    requestTimeout: { type: 'integer', minimum: 1 },
    headersTimeout: { type: 'integer', minimum: 1 },
    enableModelApi: { type: 'boolean' },
    allowedUrls: { type: 'array', items: { type: 'string', minLength: 1 } },
    tokenFile: { type: 'string', minLength: 1 },
    authApis: { type: 'array', items: { enum: ['inference', 'management', 'metrics'] }, uniqueItems: true },
    corsAllowedOrigins: { type: 'array', items: { type: 'string', minLength: 1 } },
  },
} as const;

/** The resolved config: every value set, units in the names. */
export interface ServerConfig {
  models: readonly string[];
  modelStore: string | undefined;
  inferenceAddress: string;
  managementAddress: string;
  metricsAddress: string;
  /** Default workers per model; a model's minWorkers overrides it. */
  workers: number;
  /** Default isolation of a model's workers; a model's `isolation` overrides it. */
  isolation: Isolation;
  maxRequestSizeBytes: number;
  /** Default queue bound per model; a model's jobQueueSize overrides it. */
  jobQueueSize: number;
  drainTimeoutMs: number;
  requestTimeoutMs: number;
  headersTimeoutMs: number;
  /** Registering and unregistering models over HTTP (POST/DELETE /models). Off by default. */
  enableModelApi: boolean;
  /** Regular expressions a non-model-store `url` must match to be registered. Empty: none may. */
  allowedUrls: readonly RegExp[];
  /** The bearer token, from tokenFile or KILN_TOKEN; undefined: no auth. */
  token: string | undefined;
  /** The APIs the token protects. */
  authApis: readonly ApiName[];
  /** Origins allowed by CORS; empty: CORS is off. */
  corsAllowedOrigins: readonly string[];
}

export const SERVER_DEFAULTS: ServerConfigFile = Object.freeze({
  models: [],
  inferenceAddress: 'http://127.0.0.1:8080',
  managementAddress: 'http://127.0.0.1:8081',
  metricsAddress: 'http://127.0.0.1:8082',
  workers: 1,
  isolation: 'thread',
  maxRequestSize: 6_553_500,
  jobQueueSize: 100,
  drainTimeout: 30,
  requestTimeout: 60,
  headersTimeout: 20,
  enableModelApi: false,
  allowedUrls: [],
  authApis: ['inference', 'management'] as ApiName[],
  corsAllowedOrigins: [],
});

/** Flag name, env variable and parser for each key, in one table (also used by the docs). */
export const SERVER_KEYS = {
  models: { flag: '--models', env: 'KILN_MODELS', parse: (v: string) => v.split(/[\s,]+/).filter(Boolean) },
  modelStore: { flag: '--model-store', env: 'KILN_MODEL_STORE', parse: (v: string) => v },
  inferenceAddress: { flag: '--inference-address', env: 'KILN_INFERENCE_ADDRESS', parse: (v: string) => v },
  managementAddress: { flag: '--management-address', env: 'KILN_MANAGEMENT_ADDRESS', parse: (v: string) => v },
  metricsAddress: { flag: '--metrics-address', env: 'KILN_METRICS_ADDRESS', parse: (v: string) => v },
  workers: { flag: '--workers', env: 'KILN_WORKERS', parse: Number },
  isolation: { flag: '--isolation', env: 'KILN_ISOLATION', parse: (v: string) => v },
  maxRequestSize: { flag: '--max-request-size', env: 'KILN_MAX_REQUEST_SIZE', parse: Number },
  jobQueueSize: { flag: '--job-queue-size', env: 'KILN_JOB_QUEUE_SIZE', parse: Number },
  drainTimeout: { flag: '--drain-timeout', env: 'KILN_DRAIN_TIMEOUT', parse: Number },
  requestTimeout: { flag: '--request-timeout', env: 'KILN_REQUEST_TIMEOUT', parse: Number },
  headersTimeout: { flag: '--headers-timeout', env: 'KILN_HEADERS_TIMEOUT', parse: Number },
  enableModelApi: {
    flag: '--enable-model-api',
    env: 'KILN_ENABLE_MODEL_API',
    parse: (v: string) => (v === 'true' || v === '1' ? true : v === 'false' || v === '0' ? false : v),
  },
  allowedUrls: { flag: '--allowed-urls', env: 'KILN_ALLOWED_URLS', parse: (v: string) => v.split(/\s+/).filter(Boolean) },
  tokenFile: { flag: '--token-file', env: 'KILN_TOKEN_FILE', parse: (v: string) => v },
  authApis: { flag: '--auth-apis', env: 'KILN_AUTH_APIS', parse: (v: string) => v.split(/[\s,]+/).filter(Boolean) },
  corsAllowedOrigins: {
    flag: '--cors-allowed-origins',
    env: 'KILN_CORS_ALLOWED_ORIGINS',
    parse: (v: string) => v.split(/[\s,]+/).filter(Boolean),
  },
} as const satisfies Record<keyof ServerConfigFile, { flag: string; env: string; parse: (v: string) => unknown }>;

const validate = compileSchema<ServerConfigFile>(serverConfigSchema, new URL('./server-config.schema.cjs', import.meta.url));

export interface ConfigSources {
  /** Values from flags, already parsed by the CLI. */
  flags?: ServerConfigFile;
  env?: NodeJS.ProcessEnv;
  /** `--config` (or KILN_CONFIG): a YAML or JSON file. */
  file?: string | undefined;
  cwd?: string;
}

/**
 * Resolves the server config: flags > KILN_* environment > config file > defaults. Each layer
 * is validated on its own so an error names where the bad value came from.
 */
export function resolveServerConfig(sources: ConfigSources = {}): ServerConfig {
  const env = sources.env ?? {};
  const cwd = sources.cwd ?? process.cwd();
  const fileName = sources.file ?? env.KILN_CONFIG;
  const fromFile = fileName === undefined ? {} : checked(readConfigFile(resolve(cwd, fileName), fileName), fileName);
  const fromEnv: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(SERVER_KEYS)) {
    const raw = env[spec.env];
    if (raw !== undefined && raw !== '') fromEnv[key] = spec.parse(raw);
  }
  checked(fromEnv, 'the environment', (path) => SERVER_KEYS[path[0] as keyof typeof SERVER_KEYS]?.env ?? path.join('.'));
  const fromFlags = checked(
    stripUndefined(sources.flags ?? {}),
    'the command line',
    (path) => SERVER_KEYS[path[0] as keyof typeof SERVER_KEYS]?.flag ?? path.join('.'),
  );
  const merged = { ...SERVER_DEFAULTS, ...fromFile, ...fromEnv, ...fromFlags } as Required<ServerConfigFile>;
  const modelStore = merged.modelStore === undefined ? undefined : resolve(cwd, merged.modelStore);
  return Object.freeze({
    models: Object.freeze([...merged.models]),
    modelStore,
    inferenceAddress: merged.inferenceAddress,
    managementAddress: merged.managementAddress,
    metricsAddress: merged.metricsAddress,
    workers: merged.workers,
    isolation: merged.isolation,
    maxRequestSizeBytes: merged.maxRequestSize,
    jobQueueSize: merged.jobQueueSize,
    drainTimeoutMs: merged.drainTimeout * 1000,
    requestTimeoutMs: merged.requestTimeout * 1000,
    headersTimeoutMs: merged.headersTimeout * 1000,
    enableModelApi: merged.enableModelApi,
    allowedUrls: Object.freeze(merged.allowedUrls.map((pattern) => compileUrlPattern(pattern))),
    token: readToken(merged.tokenFile === undefined ? undefined : resolve(cwd, merged.tokenFile), env.KILN_TOKEN),
    authApis: Object.freeze([...merged.authApis]),
    corsAllowedOrigins: Object.freeze([...merged.corsAllowedOrigins]),
  });
}

/** An allowedUrls entry is a regular expression matched against the whole URL. */
function compileUrlPattern(pattern: string): RegExp {
  try {
    return new RegExp(`^(?:${pattern})$`);
  } catch (error) {
    throw serverError(
      'KILN_ERR_SERVER_CONFIG_INVALID',
      `allowedUrls: "${pattern}" is not a regular expression: ${(error as Error).message}`,
    );
  }
}

/** The token comes from a file (first line) or KILN_TOKEN; a short one is refused. */
function readToken(file: string | undefined, fromEnv: string | undefined): string | undefined {
  let token = fromEnv;
  if (file !== undefined) {
    try {
      token = readFileSync(file, 'utf8').split('\n')[0]!.trim();
    } catch {
      throw serverError('KILN_ERR_SERVER_CONFIG_INVALID', `--token-file ${file}: no such file`);
    }
  }
  if (token === undefined || token === '') return undefined;
  if (token.length < 16)
    throw serverError(
      'KILN_ERR_SERVER_CONFIG_INVALID',
      'the auth token must be at least 16 characters; generate one with `openssl rand -hex 32`',
    );
  return token;
}

/** The number of CPU cores ONNX Runtime threads are divided among. */
export function coreCount(): number {
  return availableParallelism();
}

function readConfigFile(path: string, given: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw serverError('KILN_ERR_SERVER_CONFIG_INVALID', `--config ${given}: no such file (looked for ${path})`, { details: { path } });
  }
  try {
    // YAML is a superset of JSON: one parser reads both. Loaded here, only when there is a file.
    const { parse } = createRequire(import.meta.url)('yaml') as typeof import('yaml');
    return parse(text) ?? {};
  } catch (error) {
    throw serverError('KILN_ERR_SERVER_CONFIG_INVALID', `${path} is not YAML or JSON: ${(error as Error).message}`, { details: { path } });
  }
}

function checked(value: unknown, source: string, label?: (path: string[]) => string): ServerConfigFile {
  if (validate(value)) return value;
  const problems = formatErrors(validate.errors ?? [], label);
  throw serverError('KILN_ERR_SERVER_CONFIG_INVALID', `invalid server configuration from ${source}:\n  ${problems.join('\n  ')}`, {
    details: { source, problems },
  });
}

function stripUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

/**
 * `http://127.0.0.1:8080` → host and port for listen(); port 0 picks a free one. Addresses are plain
 * HTTP (the schema refuses anything else): TLS belongs to a proxy in front.
 */
export function parseAddress(address: string): { host: string; port: number } {
  const url = new URL(address);
  return { host: url.hostname.replace(/^\[|\]$/g, ''), port: url.port === '' ? 80 : Number(url.port) };
}
