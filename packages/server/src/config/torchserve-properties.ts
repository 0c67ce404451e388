import type { PropertyEntry } from './java-properties.js';
import type { ServerOptionKey } from './server-options.js';

/*
 * TorchServe's config.properties, read as one more config file format: each key Kiln has an
 * equivalent for becomes that server option; every other key is left out with one warning line that
 * says why and what to use instead. Every TorchServe key is listed once below, with its row of the
 * table in docs/reference/server-config.md (a test keeps the two in step).
 */

/** A config.properties turned into the server config file's keys. */
export interface TranslatedProperties {
  /** Under Kiln's file keys, still to be checked against the schema. */
  values: Record<string, unknown>;
  /** The TorchServe key each Kiln key came from, so that a schema error names the key in the file. */
  keyOf: Partial<Record<ServerOptionKey, string>>;
  /** One line for each key left out, or not taken as TorchServe takes it. */
  warnings: string[];
  /** `key: message` for each value Kiln cannot serve, reported with the schema's errors. */
  problems: string[];
}

interface Context {
  key: string;
  props: ReadonlyMap<string, string>;
  set(kiln: ServerOptionKey, value: unknown): void;
  warn(message: string): void;
  problem(message: string): void;
}

interface Rule {
  /** The table's "in Kiln" column (Markdown). */
  becomes: string;
  read(value: string, t: Context): void;
}

const integer = (v: string): unknown => (/^[+-]?\d+$/.test(v) ? Number(v) : v);
const boolean = (v: string): unknown => (/^(true|false)$/i.test(v) ? v.toLowerCase() === 'true' : v);
const list = (v: string) =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

/** Becomes the Kiln key, read by `read`; the schema then checks it and names the TorchServe key. */
const into = (kiln: ServerOptionKey, read: (v: string) => unknown = (v) => v, note = ''): Rule => ({
  becomes: `\`${kiln}\`${note}`,
  read: (value, t) => t.set(kiln, read(value)),
});
/** Left out, whatever its value. */
const unused = (why: string): Rule => ({
  becomes: `Not used, warned: ${why}.`,
  read: (_value, t) => t.warn(`${t.key} is not used: ${why}`),
});
/** Kiln always does what `expected` (true or false) says; the other value is warned. */
const always = (expected: boolean, means: string, why: string): Rule => ({
  becomes: `\`${String(expected)}\`: ${means}. \`${String(!expected)}\`: not used, warned: ${why}.`,
  read: (value, t) => {
    const given = boolean(value.trim());
    if (typeof given !== 'boolean') t.problem(`must be true or false, received "${value}"`);
    else if (given !== expected) t.warn(`${t.key}=${value.trim()} is not used: ${why}`);
  },
});

const address = (kiln: 'inferenceAddress' | 'managementAddress' | 'metricsAddress'): Rule => ({
  becomes: `\`${kiln}\`. \`http://host:port\` is taken as it is; an \`https://\` or \`unix:\` address is refused (TLS belongs to a proxy in front of Kiln).`,
  read: (value, t) => {
    if (/^https:\/\//i.test(value)) {
      t.problem(`${value} is HTTPS: Kiln serves plain HTTP, so terminate TLS in a proxy in front of it and give an http:// address`);
    } else if (/^unix:/i.test(value)) {
      t.problem(`${value} is a Unix socket: Kiln listens on TCP; give an http://host:port address`);
    } else {
      t.set(kiln, value.replace(/^http:\/\//i, 'http://'));
    }
  },
});

const PER_MODEL_KEYS = 'minWorkers, maxWorkers, batchSize, maxBatchDelay, responseTimeout, startupTimeout';
const NO_GRPC =
  "Kiln's gRPC APIs have no such setting; Kiln serves TorchServe's gRPC APIs on tsGrpcInferenceAddress and tsGrpcManagementAddress (--ts-grpc-inference-address, --ts-grpc-management-address), and KServe v2's on grpcAddress (--grpc-address)";
/**
 * TorchServe's gRPC address is two keys, a host and a port: both become one `host:port` (each
 * key's default filling in for the other), read once whichever of the two comes first.
 */
const grpcAddress = (api: 'inference' | 'management', kiln: 'tsGrpcInferenceAddress' | 'tsGrpcManagementAddress', port: number): Rule => ({
  becomes: `\`${kiln}\`, with \`grpc_${api}_address\` (default 127.0.0.1) and \`grpc_${api}_port\` (default ${port}) as its host and port.`,
  read: (_value, t) => {
    const host = t.props.get(`grpc_${api}_address`)?.trim() || '127.0.0.1';
    const given = t.props.get(`grpc_${api}_port`)?.trim() || String(port);
    if (!/^\d{1,5}$/.test(given) || Number(given) > 65535) {
      if (t.key === `grpc_${api}_port`) t.problem(`must be a port number (0 to 65535), received "${given}"`);
      return;
    }
    t.set(kiln, `${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${given}`);
  },
});
const NO_TLS = 'Kiln serves plain HTTP; terminate TLS in a proxy in front of it';
const NOT_KILN = "it sets TorchServe's Java frontend or Python workers, which Kiln has no counterpart for";

export const TORCHSERVE_KEYS: Readonly<Record<string, Rule>> = {
  inference_address: address('inferenceAddress'),
  management_address: {
    ...address('managementAddress'),
    becomes:
      '`managementAddress`, as `inference_address`. The same address as `inference_address` (TorchServe then serves both APIs on one port) is warned and left out: Kiln gives each API a port of its own, and the management API keeps its default.',
    read(value, t) {
      if (!sameAddress(value, t.props.get('inference_address'))) return address('managementAddress').read(value, t);
      t.warn(
        `${t.key} is not used: it is inference_address's address, where TorchServe serves both APIs on one port; Kiln gives each API a port of its own, so the management API stays on its default (http://127.0.0.1:8081) unless management_address names another port`,
      );
    },
  },
  metrics_address: address('metricsAddress'),
  model_store: into('modelStore'),
  load_models: {
    becomes:
      '`models`: `all` (any case) loads every archive in the model store; otherwise each comma-separated `name=file.mar` or `file.mar`, as `--models` takes them. A URL is refused: Kiln loads archives at start from files. Left out, with a warning, when `model_snapshot` is set, as TorchServe does.',
    read(value, t) {
      if (t.props.has('model_snapshot'))
        return t.warn(`${t.key} is not used: model_snapshot is set, and its models are loaded instead, as in TorchServe`);
      const specs = list(value);
      for (const spec of specs) {
        if (/^[a-z][a-z0-9+.-]*:\/\//i.test(spec.slice(spec.indexOf('=') + 1))) {
          t.problem(`${spec} is a URL: Kiln loads archives at start from files; download it into model_store and name the file`);
        }
      }
      if (specs.length > 0) t.set('models', specs.length === 1 && specs[0]!.toLowerCase() === 'all' ? ['all'] : specs);
    },
  },
  model_snapshot: {
    becomes: `\`models\`: \`<name>=<marName>\` for each version in its \`models\`, the \`defaultVersion\` first. The versions' settings (${PER_MODEL_KEYS}) are not used, with one warning: a model's settings come from the \`model-config.yaml\` in its archive.`,
    read: readSnapshot,
  },
  models: {
    becomes: `Not used, warned: the server config sets no model's settings; put ${PER_MODEL_KEYS} in each archive's \`model-config.yaml\` (\`kiln archive -c\`), or give them when registering (\`POST /models?batch_size=…\`).`,
    read(value, t) {
      let names = '';
      try {
        const parsed: unknown = JSON.parse(value);
        if (isObject(parsed)) names = ` (${Object.keys(parsed).join(', ')})`;
      } catch {
        // Not JSON: it is left out all the same, and the warning says so.
      }
      t.warn(
        `${t.key}${names} is not used: the server config sets no model's settings; put ${PER_MODEL_KEYS} in each archive's model-config.yaml (kiln archive -c), or give them when registering (POST /models?batch_size=...)`,
      );
    },
  },
  default_workers_per_model: {
    becomes:
      "`workers`. `0` (TorchServe: one worker per GPU, or per CPU core) is warned and left out: `workers` keeps Kiln's default. A model's `minWorkers` wins over it, as in TorchServe.",
    read(value, t) {
      const workers = integer(value);
      if (workers !== 0) return t.set('workers', workers);
      t.warn(
        `${t.key}=0 is not used: TorchServe then starts one worker per GPU or CPU core, which Kiln has no setting for; give a number of workers`,
      );
    },
  },
  job_queue_size: into('jobQueueSize', integer),
  max_request_size: into('maxRequestSize', integer),
  max_response_size: into('maxResponseSize', integer),
  enable_model_api: into('enableModelApi', boolean),
  allowed_urls: into(
    'allowedUrls',
    list,
    ": the comma-separated regular expressions, each matched against the whole URL as in TorchServe. Unset, Kiln allows no URL (TorchServe's default allows any `file://` and `http(s)://` URL).",
  ),
  cors_allowed_origin: into('corsAllowedOrigins', list),
  cors_allowed_methods: unused('Kiln allows GET, HEAD, POST, PUT, DELETE and OPTIONS to the origins in corsAllowedOrigins'),
  cors_allowed_headers: unused('Kiln allows the request headers a preflight asks for, from the origins in corsAllowedOrigins'),
  disable_token_authorization: always(
    true,
    'Kiln asks for no token unless `tokenFile` or `KILN_TOKEN` gives one',
    "Kiln does not make TorchServe's key_file.json; set tokenFile (--token-file) or KILN_TOKEN to require a bearer token, and authApis for the APIs it guards",
  ),
  enable_token_authorization: always(
    false,
    'Kiln asks for no token unless `tokenFile` or `KILN_TOKEN` gives one',
    "Kiln does not make TorchServe's key_file.json; set tokenFile (--token-file) or KILN_TOKEN to require a bearer token, and authApis for the APIs it guards",
  ),
  token_expiration_min: unused("Kiln's token does not expire; to change it, change the token file (or KILN_TOKEN) and restart"),
  enable_metrics_api: always(
    true,
    'Kiln always serves the metrics API',
    'Kiln always serves the metrics API; keep metricsAddress on 127.0.0.1, or guard it with the token (authApis: metrics)',
  ),
  metrics_mode: {
    becomes: "`prometheus` (any case): what Kiln does. Any other mode is warned: Kiln's metrics are always Prometheus text on `/metrics`.",
    read: readMetricsMode,
  },
  metrics_format: {
    becomes: 'As `metrics_mode` (the older name).',
    read: readMetricsMode,
  },
  default_response_timeout: unused(
    "Kiln has no server-wide response timeout; set responseTimeout (seconds, default 120) in each model's model-config.yaml",
  ),
  default_startup_timeout: unused(
    "Kiln has no server-wide startup timeout; set startupTimeout (seconds, default 120) in each model's model-config.yaml",
  ),
  unregister_model_timeout: unused('unregistering a version answers its queued requests for at most drainTimeout (--drain-timeout)'),
  number_of_netty_threads: unused("Kiln's HTTP servers run on Node's event loop, with no thread pool to size"),
  netty_client_threads: unused("Kiln's HTTP servers run on Node's event loop, with no thread pool to size"),
  number_of_gpu: into('numberOfGpu', integer),
  grpc_inference_address: grpcAddress('inference', 'tsGrpcInferenceAddress', 7070),
  grpc_management_address: grpcAddress('management', 'tsGrpcManagementAddress', 7071),
  grpc_inference_port: grpcAddress('inference', 'tsGrpcInferenceAddress', 7070),
  grpc_management_port: grpcAddress('management', 'tsGrpcManagementAddress', 7071),
  grpc_inference_max_connection_age_ms: unused(NO_GRPC),
  grpc_management_max_connection_age_ms: unused(NO_GRPC),
  grpc_inference_max_connection_age_grace_ms: unused(NO_GRPC),
  grpc_management_max_connection_age_grace_ms: unused(NO_GRPC),
  enable_grpc_ssl: unused(NO_GRPC),
  keystore: unused(NO_TLS),
  keystore_pass: unused(NO_TLS),
  keystore_type: unused(NO_TLS),
  certificate_file: unused(NO_TLS),
  private_key_file: unused(NO_TLS),
  enable_envvars_config: always(
    false,
    'Kiln reads no `TS_*` variable; the `KILN_*` variables play their part',
    "Kiln does not read TorchServe's TS_* variables; use the KILN_* variable of each setting (KILN_INFERENCE_ADDRESS, KILN_WORKERS, ...)",
  ),
  use_env_allowed_urls: unused('Kiln does not read TS_ALLOWED_URLS; KILN_ALLOWED_URLS sets allowedUrls'),
  install_py_dep_per_model: unused(
    "kiln archive bundles a handler's npm dependencies into its archive; the server never installs packages",
  ),
  default_service_handler: unused('every Kiln archive names its handler in its manifest'),
  service_envelope: unused('every model answers the TorchServe, KServe v1 (:predict) and KServe v2 routes at once'),
  ts_open_inference_protocol: always(
    true,
    'Kiln always serves the KServe v2 (open inference protocol) routes',
    'Kiln always serves the KServe v2 (open inference protocol) routes',
  ),
  decode_input_request: unused('handlers get the body as bytes, and parsed as well when its content type is JSON, and decide the rest'),
  limit_max_image_pixels: unused("the handler SDK's decodeImage takes a maxPixels option"),
  blacklist_env_vars: unused("workers get the server's environment less KILN_TOKEN and KILN_TOKEN_FILE; there is no list to set"),
  metrics_config: unused("Kiln's metric families are fixed (docs/reference/metrics.md); handlers add their own through context.metrics"),
  model_metrics_auto_detect: unused(
    "Kiln's metric families are fixed (docs/reference/metrics.md); handlers add their own through context.metrics",
  ),
  disable_system_metrics: unused("Kiln's metric families are fixed (docs/reference/metrics.md)"),
  metric_time_interval: unused('Kiln computes its metrics when /metrics is read'),
  system_metrics_cmd: unused("Kiln's metric families are fixed (docs/reference/metrics.md)"),
  workflow_store: unused('Kiln has no workflows'),
  snapshot_store: unused("Kiln does not read or write TorchServe's config snapshots"),
  ts_header_key_sequence_id: unused('Kiln has no sequence batching'),
  ts_header_key_sequence_start: unused('Kiln has no sequence batching'),
  ts_header_key_sequence_end: unused('Kiln has no sequence batching'),
  initial_worker_port: unused("Kiln's workers talk to the server over pipes and thread messages, not ports"),
  initial_distribution_port: unused("Kiln's workers talk to the server over pipes and thread messages, not ports"),
  debug: unused('set logLevel (--log-level debug) for more log lines'),
  model_server_home: unused(NOT_KILN),
  python: unused(NOT_KILN),
  vmargs: unused(NOT_KILN),
  prefer_direct_buffer: unused(NOT_KILN),
  async_logging: unused(NOT_KILN),
  use_native_io: unused(NOT_KILN),
  io_ratio: unused(NOT_KILN),
  cpu_launcher_enable: unused(NOT_KILN),
  cpu_launcher_args: unused(NOT_KILN),
  ipex_enable: unused(NOT_KILN),
  ipex_gpu_enable: unused(NOT_KILN),
  cpp_log_config: unused(NOT_KILN),
  version: unused('TorchServe writes its own version into its config snapshots'),
  tsConfigFile: unused('TorchServe writes the name of its config file into its config snapshots'),
};

/**
 * Translates the entries of a config.properties. `$$NAME$$` in a value is replaced by the variable
 * NAME, as TorchServe does. Problems name the TorchServe key; the caller reports them with the
 * schema's errors, all together.
 */
export function translateTorchServeProperties(
  entries: readonly PropertyEntry[],
  source: string,
  env: NodeJS.ProcessEnv,
): TranslatedProperties {
  const problems: string[] = [];
  const warnings: string[] = [];
  const props = new Map<string, string>();
  const lines = new Map<string, number[]>();
  for (const { key, value, line } of entries) {
    props.set(
      key,
      substitute(value, env, (name) => problems.push(`${key}: $$${name}$$ names the variable ${name}, which is not set`)).trim(),
    );
    lines.set(key, [...(lines.get(key) ?? []), line]);
  }
  const values: Record<string, unknown> = {};
  const keyOf: Partial<Record<ServerOptionKey, string>> = {};
  for (const [key, value] of props) {
    const at = lines.get(key)!;
    if (at.length > 1) warnings.push(`${source}: ${key} is set on lines ${at.join(', ')}; the last one counts, as in TorchServe`);
    const rule = Object.hasOwn(TORCHSERVE_KEYS, key) ? TORCHSERVE_KEYS[key] : undefined;
    if (rule === undefined) {
      warnings.push(`${source}: ${key} is not used: it is not a TorchServe setting Kiln knows (TorchServe also ignores it)`);
      continue;
    }
    rule.read(value, {
      key,
      props,
      set(kiln, v) {
        values[kiln] = v;
        keyOf[kiln] = key;
      },
      warn: (message) => warnings.push(`${source}: ${message}`),
      problem: (message) => problems.push(`${key}: ${message}`),
    });
  }
  return { values, keyOf, warnings, problems };
}

/** The table of docs/reference/server-config.md#every-torchserve-key. */
export function renderTorchServeKeysTable(): string {
  const rows = Object.entries(TORCHSERVE_KEYS).map(([key, rule]) => `| \`${key}\` | ${rule.becomes} |`);
  return ['| TorchServe key | in Kiln |', '|---|---|', ...rows].join('\n');
}

function readSnapshot(value: string, t: Context): void {
  let snapshot: unknown;
  try {
    snapshot = JSON.parse(value);
  } catch (error) {
    return t.problem(`is not JSON: ${(error as Error).message}`);
  }
  const models = isObject(snapshot) ? snapshot.models : undefined;
  if (!isObject(models))
    return t.problem('has no "models" object; expected {"models": {"<name>": {"<version>": {"marName": "<file>", ...}}}}');
  const specs: string[] = [];
  const settings = new Set<string>();
  for (const [name, versions] of Object.entries(models)) {
    if (!isObject(versions)) {
      t.problem(`models.${name} must be an object of versions`);
      continue;
    }
    const isDefault = (entry: unknown) => (isObject(entry) && entry.defaultVersion === true ? 1 : 0);
    for (const [version, entry] of Object.entries(versions).sort(([, a], [, b]) => isDefault(b) - isDefault(a))) {
      if (!isObject(entry) || typeof entry.marName !== 'string' || entry.marName === '') {
        t.problem(`models.${name}.${version} has no marName`);
        continue;
      }
      specs.push(`${name}=${entry.marName}`);
      for (const setting of Object.keys(entry)) if (setting !== 'marName' && setting !== 'defaultVersion') settings.add(setting);
    }
  }
  if (specs.length > 0) t.set('models', specs);
  if (settings.size > 0) {
    t.warn(
      `${t.key}: its models are loaded (${Object.keys(models).join(', ')}), but not their settings (${[...settings].join(', ')}): Kiln takes a model's settings from the model-config.yaml in its archive (kiln archive -c)`,
    );
  }
}

function readMetricsMode(value: string, t: Context): void {
  if (value.replace(/\s/g, '').toLowerCase() === 'prometheus') return;
  t.warn(
    `${t.key}=${value} is not used: Kiln's metrics are always Prometheus text on /metrics (with TorchServe's names too, see torchserveMetrics); there is no log mode`,
  );
}

/** Two addresses on one port (port 0 picks a different free port each time, so it never is). */
function sameAddress(a: string, b: string | undefined): boolean {
  if (b === undefined) return false;
  try {
    const [x, y] = [new URL(a), new URL(b)];
    const port = (u: URL) => (u.port === '' ? '80' : u.port);
    return x.hostname === y.hostname && port(x) === port(y) && port(x) !== '0';
  } catch {
    return false;
  }
}

/** TorchServe's `$$NAME$$`: at least two characters other than `$`. */
function substitute(value: string, env: NodeJS.ProcessEnv, missing: (name: string) => void): string {
  return value.replace(/\$\$([^$]+[^$])\$\$/g, (whole, name: string) => {
    const found = env[name];
    if (found === undefined) missing(name);
    return found ?? whole;
  });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
