import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { createRequire } from 'node:module';
import { compileSchema, formatErrors, type Isolation } from '@kiln/handler-sdk/runtime';
import { serverError } from '../errors.js';
import { looksLikeProperties, parseProperties } from './java-properties.js';
import {
  SERVER_DEFAULTS,
  SERVER_OPTIONS,
  serverConfigSchema,
  type ApiName,
  type ServerConfigFile,
  type ServerOptionKey,
} from './server-options.js';
import { translateTorchServeProperties } from './torchserve-properties.js';

export { API_NAMES, SERVER_DEFAULTS, SERVER_OPTIONS, serverConfigSchema } from './server-options.js';
export type { ApiName, ServerConfigFile, ServerOptionKey } from './server-options.js';

/** The resolved config: every value set, units in the names. */
export interface ServerConfig {
  models: readonly string[];
  modelStore: string | undefined;
  inferenceAddress: string;
  managementAddress: string;
  metricsAddress: string;
  /** `host:port` of the KServe v2 gRPC API; undefined: off. */
  grpcAddress: string | undefined;
  /** `host:port` of TorchServe's gRPC inference API; undefined: off. */
  tsGrpcInferenceAddress: string | undefined;
  /** `host:port` of TorchServe's gRPC management API; undefined: off. */
  tsGrpcManagementAddress: string | undefined;
  /** Default workers per model; a model's minWorkers overrides it. */
  workers: number;
  /** Default isolation of a model's workers; a model's `isolation` overrides it. */
  isolation: Isolation;
  maxRequestSizeBytes: number;
  /** The largest answer body a handler may send. */
  maxResponseSizeBytes: number;
  /** Default queue bound per model; a model's jobQueueSize overrides it. */
  jobQueueSize: number;
  drainTimeoutMs: number;
  requestTimeoutMs: number;
  headersTimeoutMs: number;
  /** Registering and unregistering models over HTTP (POST/DELETE /models). Off by default. */
  enableModelApi: boolean;
  /** Ready even when a model given at start was refused (the ones still loading always count). */
  allowPartialStart: boolean;
  /** Regular expressions a non-model-store `url` must match to be registered. Empty: none may. */
  allowedUrls: readonly RegExp[];
  /** The bearer token, from tokenFile or KILN_TOKEN; undefined: no auth. */
  token: string | undefined;
  /** Where the token came from, for the startup line: `KILN_TOKEN`, or the file and what named it. */
  tokenSource: string | undefined;
  /** Whether the health routes (/ping, /v2/health/live, /v2/health/ready) need the token too. */
  healthAuth: boolean;
  /** The APIs the token protects. */
  authApis: readonly ApiName[];
  /** Origins allowed by CORS; empty: CORS is off. */
  corsAllowedOrigins: readonly string[];
  /** Bucket bounds of the duration histograms, in seconds, ascending. */
  latencyBuckets: readonly number[];
  /** Bucket bounds of kiln_batch_size, ascending. */
  batchSizeBuckets: readonly number[];
  /** Also write TorchServe's metric families. */
  torchserveMetrics: boolean;
  logFormat: 'json' | 'pretty';
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  /** `off`, `stdout`, or an absolute file path. */
  accessLog: string;
  logDir: string | undefined;
  /** Write the management API's changes to stateDir/snapshot.json, and restore them at start. */
  snapshot: boolean;
  /** The GPUs GPU models' workers share; undefined: those nvidia-smi lists. */
  numberOfGpu: number | undefined;
  /** Probe and log the loadable execution providers once the models are up. */
  probeProviders: boolean;
  /** An absolute path. */
  stateDir: string;
  /**
   * What the config file set that is not used (the keys of a TorchServe config.properties Kiln has no
   * equivalent for), one line each; startServer logs them once, as warnings.
   */
  warnings: readonly string[];
}

const validate = compileSchema<ServerConfigFile>(serverConfigSchema, new URL('./server-config.schema.cjs', import.meta.url));

export interface ConfigSources {
  /** Values from flags, already parsed by the CLI. */
  flags?: ServerConfigFile;
  env?: NodeJS.ProcessEnv;
  /**
   * `--config` (or KILN_CONFIG): a YAML or JSON file, or TorchServe's config.properties (told by its
   * `.properties` extension, or by `key=value` lines that do not parse as a YAML mapping).
   */
  file?: string | undefined;
  /** `--ts-config` (or TS_CONFIG_FILE): TorchServe's config.properties. */
  tsConfig?: string | undefined;
  cwd?: string;
}

/**
 * Resolves the server config: flags > KILN_* environment > config file > defaults. Each layer
 * is validated on its own so an error names where the bad value came from.
 */
export function resolveServerConfig(sources: ConfigSources = {}): ServerConfig {
  const env = sources.env ?? {};
  const cwd = sources.cwd ?? process.cwd();
  const chosen = configFile(sources, env);
  const file = chosen === undefined ? undefined : { name: chosen.name, ...readConfigFile(resolve(cwd, chosen.name), chosen, env) };
  // A config.properties' errors name its TorchServe keys.
  const fileKey = (path: string[]) => (isOptionKey(path[0]) ? file?.keyOf?.[path[0]] : undefined) ?? path.join('.');
  const fromFile = file === undefined ? {} : checked(file.values, file.name, fileKey, file.problems);
  const fromEnv: Record<string, unknown> = {};
  for (const [key, o] of Object.entries(SERVER_OPTIONS)) {
    const raw = env[o.env];
    if (raw !== undefined && raw !== '') fromEnv[key] = o.fromEnv(raw);
  }
  const named = (pick: (key: ServerOptionKey) => string) => (path: string[]) => (isOptionKey(path[0]) ? pick(path[0]) : path.join('.'));
  checked(
    fromEnv,
    'the environment',
    named((key) => SERVER_OPTIONS[key].env),
  );
  const fromFlags = checked(
    stripUndefined(sources.flags ?? {}),
    'the command line',
    named((key) => SERVER_OPTIONS[key].flag.split(' ')[0]!),
  );
  const merged = { ...SERVER_DEFAULTS, ...fromFile, ...fromEnv, ...fromFlags } as Required<ServerConfigFile>;
  const modelStore = merged.modelStore === undefined ? undefined : resolve(cwd, merged.modelStore);
  return Object.freeze({
    models: Object.freeze([...merged.models]),
    modelStore,
    inferenceAddress: merged.inferenceAddress,
    managementAddress: merged.managementAddress,
    metricsAddress: merged.metricsAddress,
    grpcAddress: merged.grpcAddress === 'off' ? undefined : merged.grpcAddress,
    tsGrpcInferenceAddress: merged.tsGrpcInferenceAddress === 'off' ? undefined : merged.tsGrpcInferenceAddress,
    tsGrpcManagementAddress: merged.tsGrpcManagementAddress === 'off' ? undefined : merged.tsGrpcManagementAddress,
    workers: merged.workers,
    isolation: merged.isolation,
    maxRequestSizeBytes: merged.maxRequestSize,
    maxResponseSizeBytes: merged.maxResponseSize,
    jobQueueSize: merged.jobQueueSize,
    drainTimeoutMs: merged.drainTimeout * 1000,
    requestTimeoutMs: merged.requestTimeout * 1000,
    headersTimeoutMs: merged.headersTimeout * 1000,
    enableModelApi: merged.enableModelApi,
    allowPartialStart: merged.allowPartialStart,
    allowedUrls: Object.freeze(merged.allowedUrls.map((pattern) => compileUrlPattern(pattern))),
    token: readToken(merged.tokenFile === undefined ? undefined : resolve(cwd, merged.tokenFile), env.KILN_TOKEN),
    tokenSource:
      merged.tokenFile !== undefined
        ? `the file ${resolve(cwd, merged.tokenFile)} (${'tokenFile' in fromFlags ? '--token-file' : 'tokenFile' in fromEnv ? 'KILN_TOKEN_FILE' : `tokenFile in ${file?.name}`})`
        : env.KILN_TOKEN
          ? 'KILN_TOKEN'
          : undefined,
    healthAuth: merged.healthAuth === 'on',
    authApis: Object.freeze([...merged.authApis]),
    corsAllowedOrigins: Object.freeze([...merged.corsAllowedOrigins]),
    latencyBuckets: ascending('latencyBuckets', merged.latencyBuckets),
    batchSizeBuckets: ascending('batchSizeBuckets', merged.batchSizeBuckets),
    torchserveMetrics: merged.torchserveMetrics === 'on',
    logFormat: merged.logFormat ?? (process.stdout.isTTY === true ? 'pretty' : 'json'),
    logLevel: merged.logLevel,
    accessLog: merged.accessLog === 'off' || merged.accessLog === 'stdout' ? merged.accessLog : resolve(cwd, merged.accessLog),
    logDir: merged.logDir === undefined ? undefined : resolve(cwd, merged.logDir),
    snapshot: merged.snapshot,
    numberOfGpu: merged.numberOfGpu,
    probeProviders: merged.probeProviders,
    stateDir: resolve(cwd, merged.stateDir),
    warnings: Object.freeze([...(file?.warnings ?? [])]),
  });
}

interface ChosenFile {
  name: string;
  /** The flag or variable that named it, for messages. */
  by: '--config' | '--ts-config' | 'KILN_CONFIG' | 'TS_CONFIG_FILE';
  /** Named as TorchServe's config.properties: read as one whatever its name. */
  properties: boolean;
}

/** One config file: a flag's over a variable's; TorchServe's TS_CONFIG_FILE only when no other is named. */
function configFile(sources: ConfigSources, env: NodeJS.ProcessEnv): ChosenFile | undefined {
  if (sources.file !== undefined && sources.tsConfig !== undefined) {
    throw serverError(
      'KILN_ERR_SERVER_CONFIG_INVALID',
      `--config ${sources.file} and --ts-config ${sources.tsConfig} both name a config file; give one of them`,
    );
  }
  if (sources.file !== undefined) return { name: sources.file, by: '--config', properties: false };
  if (sources.tsConfig !== undefined) return { name: sources.tsConfig, by: '--ts-config', properties: true };
  if (env.KILN_CONFIG !== undefined && env.KILN_CONFIG !== '') return { name: env.KILN_CONFIG, by: 'KILN_CONFIG', properties: false };
  if (env.TS_CONFIG_FILE !== undefined && env.TS_CONFIG_FILE !== '')
    return { name: env.TS_CONFIG_FILE, by: 'TS_CONFIG_FILE', properties: true };
  return undefined;
}

/** Histogram buckets must ascend: Prometheus reads each as "at most this". */
function ascending(key: string, bounds: readonly number[]): readonly number[] {
  if (bounds.some((b, i) => i > 0 && b <= bounds[i - 1]!)) {
    throw serverError(
      'KILN_ERR_SERVER_CONFIG_INVALID',
      `${key} must be in ascending order, each bound once; received [${bounds.join(', ')}]`,
    );
  }
  return Object.freeze([...bounds]);
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

interface FileValues {
  values: unknown;
  /** For a config.properties: the TorchServe key each Kiln key was read from. */
  keyOf?: Partial<Record<ServerOptionKey, string>>;
  warnings?: string[];
  /** Values that could not be translated, reported with the schema's errors. */
  problems?: string[];
}

function readConfigFile(path: string, file: ChosenFile, env: NodeJS.ProcessEnv): FileValues {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw serverError('KILN_ERR_SERVER_CONFIG_INVALID', `${file.by} ${file.name}: no such file (looked for ${path})`, {
      details: { path },
    });
  }
  if (file.properties || path.endsWith('.properties')) return readProperties(text, path, file.name, env);
  let parsed: unknown;
  try {
    // YAML is a superset of JSON: one parser reads both. Loaded here, only when there is a file.
    const { parse } = createRequire(import.meta.url)('yaml') as typeof import('yaml');
    parsed = parse(text) ?? {};
  } catch (error) {
    if (looksLikeProperties(text)) return readProperties(text, path, file.name, env);
    throw serverError('KILN_ERR_SERVER_CONFIG_INVALID', `${path} is not YAML or JSON: ${(error as Error).message}`, { details: { path } });
  }
  // `key=value` lines are one multi-line YAML string: TorchServe's config.properties under another name.
  const isMapping = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed);
  return !isMapping && looksLikeProperties(text) ? readProperties(text, path, file.name, env) : { values: parsed };
}

function readProperties(text: string, path: string, given: string, env: NodeJS.ProcessEnv): FileValues {
  let entries;
  try {
    entries = parseProperties(text);
  } catch (error) {
    throw serverError('KILN_ERR_SERVER_CONFIG_INVALID', `${path} is not a Java properties file: ${(error as Error).message}`, {
      details: { path },
    });
  }
  return translateTorchServeProperties(entries, given, env);
}

function checked(value: unknown, source: string, label?: (path: string[]) => string, found: readonly string[] = []): ServerConfigFile {
  if (validate(value) && found.length === 0) return value;
  const problems = [...found, ...formatErrors(validate.errors ?? [], label)];
  throw serverError('KILN_ERR_SERVER_CONFIG_INVALID', `invalid server configuration from ${source}:\n  ${problems.join('\n  ')}`, {
    details: { source, problems },
  });
}

function isOptionKey(key: string | undefined): key is ServerOptionKey {
  return key !== undefined && Object.hasOwn(SERVER_OPTIONS, key);
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
