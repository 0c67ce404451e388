// Prints, on one line, the server options (Kiln's file keys: inferenceAddress, models, tokenFile, ...)
// that a config file sets, so that entrypoint.sh fills in only what the file leaves out: a KILN_*
// variable beats the file (flags > env > file > defaults), so setting one the file sets would
// override it.
//
//   node config-keys.mjs <file> properties   TorchServe's config.properties (--ts-config, TS_CONFIG_FILE)
//   node config-keys.mjs <file> auto         --config, KILN_CONFIG: YAML or JSON, or a config.properties
//                                            (a .properties name, or key=value lines), as the server tells
//
// It prints nothing for a file it cannot read or parse, and always exits 0: the server reads the file
// again and reports its problems itself.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

/**
 * The TorchServe keys whose Kiln option the entrypoint may set (server-config.md's table, which the server's
 * torchserve-properties.ts renders; docker-image.test.ts keeps the two in step). TorchServe's gRPC address is
 * two keys, a host and a port: either one sets the Kiln option, the other's default filling in.
 */
const FROM_PROPERTIES = {
  inference_address: 'inferenceAddress',
  management_address: 'managementAddress',
  metrics_address: 'metricsAddress',
  model_store: 'modelStore',
  load_models: 'models',
  model_snapshot: 'models',
  grpc_inference_address: 'tsGrpcInferenceAddress',
  grpc_inference_port: 'tsGrpcInferenceAddress',
  grpc_management_address: 'tsGrpcManagementAddress',
  grpc_management_port: 'tsGrpcManagementAddress',
};

/** The keys of a Java properties file, as java.util.Properties reads it (java-properties.ts in the server). */
function propertyKeys(text) {
  const keys = [];
  // A line ending in an odd number of backslashes goes on to the next; a comment line never does.
  const continues = (line) => /(^|[^\\])(\\\\)*\\$/.test(line);
  let continued = false;
  for (const raw of text.replace(/^\uFEFF/, '').split(/\r\n|\r|\n/)) {
    const line = raw.replace(/^[ \t\f]+/, '');
    if (continued) {
      continued = continues(line);
      continue;
    }
    if (line === '' || line.startsWith('#') || line.startsWith('!')) continue;
    continued = continues(line);
    // The key ends at the first =, : or white space that no backslash escapes.
    const key = /^(?:\\.|[^\\=:\s])*/.exec(line)[0].replace(/\\(.)/g, '$1');
    if (key !== '') keys.push(key);
  }
  return keys;
}

function keysOf(path, kind) {
  const text = readFileSync(path, 'utf8');
  const properties = () => propertyKeys(text).flatMap((key) => FROM_PROPERTIES[key] ?? []);
  if (kind === 'properties' || path.endsWith('.properties')) return properties();
  let parsed;
  try {
    // The server's own YAML parser (it reads JSON too), from the server's node_modules.
    parsed = createRequire(import.meta.url)('yaml').parse(text);
  } catch {
    return /^\s*[\w.]+\s*[=:]/m.test(text) ? properties() : [];
  }
  if (parsed === null || parsed === undefined) return [];
  if (typeof parsed === 'object' && !Array.isArray(parsed)) return Object.keys(parsed);
  return typeof parsed === 'string' && /^\s*[\w.]+\s*=/m.test(text) ? properties() : [];
}

const [path, kind = 'auto'] = process.argv.slice(2);
let keys = [];
try {
  if (path !== undefined) keys = keysOf(path, kind);
} catch {
  keys = [];
}
process.stdout.write(`${[...new Set(keys)].join(' ')}\n`);
