import { LineCounter, isMap, isScalar, parseDocument, type Document } from 'yaml';
import { sdkError } from '../errors/codes.js';
import { compileSchema, describeError, errorPath } from '../schema/ajv.js';
import {
  MODEL_CONFIG_DEFAULTS,
  modelConfigSchema,
  type ModelConfig,
  type ModelConfigFile,
} from './model-config-schema.js';
import { deepFreeze } from '../util/deep-freeze.js';

const validate = compileSchema<ModelConfigFile>(modelConfigSchema);
const KNOWN_KEYS = Object.keys(modelConfigSchema.properties);

/**
 * Parses and validates model-config.yaml. Every problem is reported at once, each as
 * `file:line: key: message`; TorchServe ignores unknown keys and wrong types, Kiln refuses them.
 */
export function parseModelConfig(text: string, fileName = 'model-config.yaml'): ModelConfigFile {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const lineOf = (offset: number | undefined) => (offset === undefined ? 1 : lineCounter.linePos(offset).line);

  if (doc.errors.length > 0) {
    const lines = doc.errors.map((e) => `${fileName}:${lineOf(e.pos[0])}: ${e.message.split('\n')[0]}`);
    throw invalid(fileName, lines);
  }
  const value: unknown = doc.toJS() ?? {};
  if (validate(value)) {
    if (value.minWorkers !== undefined && value.maxWorkers !== undefined && value.maxWorkers < value.minWorkers) {
      const line = lineOf(rangeOf(doc, ['maxWorkers'], true));
      throw invalid(fileName, [`${fileName}:${line}: maxWorkers (${value.maxWorkers}) is below minWorkers (${value.minWorkers})`]);
    }
    return deepFreeze(value);
  }
  const lines = (validate.errors ?? []).map((error) => {
    const path = errorPath(error);
    const extra = (error.params as { additionalProperty?: string }).additionalProperty;
    const keyPath = extra === undefined ? path : [...path, extra];
    const line = lineOf(rangeOf(doc, keyPath, extra !== undefined));
    const label = keyPath.join('.');
    const hint = extra === undefined || path.length > 0 ? '' : suggest(extra);
    return `${fileName}:${line}: ${label === '' ? '' : `${label}: `}${describeError(error)}${hint}`;
  });
  throw invalid(fileName, lines);
}

/** Fills in defaults and converts TorchServe's key names to Kiln's unit-bearing ones. */
export function resolveModelConfig(file: ModelConfigFile = {}): ModelConfig {
  const d = MODEL_CONFIG_DEFAULTS;
  const minWorkers = file.minWorkers ?? d.minWorkers;
  const deviceType = file.deviceType ?? d.deviceType;
  return Object.freeze({
    minWorkers,
    maxWorkers: file.maxWorkers ?? minWorkers,
    batchSize: file.batchSize ?? d.batchSize,
    maxBatchDelayMs: file.maxBatchDelay ?? d.maxBatchDelayMs,
    responseTimeoutS: file.responseTimeout ?? d.responseTimeoutS,
    startupTimeoutS: file.startupTimeout ?? d.startupTimeoutS,
    jobQueueSize: file.jobQueueSize ?? d.jobQueueSize,
    clientTimeoutMs: file.clientTimeoutInMills ?? d.clientTimeoutMs,
    deviceType,
    deviceIds: Object.freeze([...(file.deviceIds ?? [])]),
    executionProviders: Object.freeze([...(file.executionProviders ?? (deviceType === 'gpu' ? ['cuda', 'cpu'] : ['cpu']))]),
    intraOpNumThreads: file.intraOpNumThreads,
    handler: Object.freeze({ ...(file.handler ?? {}) }),
  });
}

function invalid(fileName: string, lines: string[]) {
  return sdkError('KILN_ERR_MODEL_CONFIG_INVALID', `${fileName} is not a valid model config:\n  ${lines.join('\n  ')}`, {
    details: { file: fileName, problems: lines },
  });
}

/** Start offset of the node at `path` (of its key when `key` is set), for line numbers. */
function rangeOf(doc: Document, path: string[], key: boolean): number | undefined {
  const parentPath = key ? path.slice(0, -1) : path;
  const node = parentPath.length === 0 ? doc.contents : doc.getIn(parentPath, true);
  if (!key) return (node as { range?: [number, number, number] } | undefined)?.range?.[0];
  if (!isMap(node)) return undefined;
  const name = path[path.length - 1];
  const pair = node.items.find((item) => isScalar(item.key) && String(item.key.value) === name);
  return (pair?.key as { range?: [number, number, number] } | undefined)?.range?.[0];
}

function suggest(key: string): string {
  const lower = key.toLowerCase().replace(/[_-]/g, '');
  const match = KNOWN_KEYS.find((known) => known.toLowerCase() === lower);
  return match === undefined ? ` (known keys: ${KNOWN_KEYS.join(', ')})` : ` (did you mean "${match}"?)`;
}
