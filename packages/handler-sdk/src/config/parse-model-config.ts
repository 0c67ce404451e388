import { createRequire } from 'node:module';
import type { Document } from 'yaml';
import { sdkError } from '../errors/codes.js';
import { collapseAnyOf, compileSchema, describeError, errorPath } from '../schema/ajv.js';
import { MODEL_CONFIG_DEFAULTS, modelConfigSchema, type ModelConfig, type ModelConfigFile } from './model-config-schema.js';
import { deepFreeze } from '../util/deep-freeze.js';

const validate = compileSchema<ModelConfigFile>(modelConfigSchema, new URL('../schema/compiled/model-config.cjs', import.meta.url));
const KNOWN_KEYS = Object.keys(modelConfigSchema.properties);

/**
 * Parses and validates model-config.yaml. Every problem is reported at once, each as
 * `file:line: key: message`; TorchServe ignores unknown keys and wrong types, Kiln refuses them.
 */
export function parseModelConfig(text: string, fileName = 'model-config.yaml'): ModelConfigFile {
  const { LineCounter, parseDocument } = yaml();
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const lineOf = (offset: number | undefined) => (offset === undefined ? 1 : lineCounter.linePos(offset).line);

  if (doc.errors.length > 0) {
    throw invalid(
      fileName,
      doc.errors.map((e) => ({ line: lineOf(e.pos[0]), text: e.message.split('\n')[0]! })),
    );
  }
  const value: unknown = doc.toJS() ?? {};
  const problems: { line: number; text: string }[] = [];
  if (!validate(value)) {
    for (const error of collapseAnyOf(validate.errors ?? [])) {
      const path = errorPath(error);
      const extra = (error.params as { additionalProperty?: string }).additionalProperty;
      const keyPath = extra === undefined ? path : [...path, extra];
      const label = path.length === 0 ? '' : `${path.join('.')}: `;
      const hint = extra === undefined || path.length > 0 ? '' : suggest(extra);
      problems.push({ line: lineOf(rangeOf(doc, keyPath, extra !== undefined)), text: `${label}${describeError(error)}${hint}` });
    }
  }
  const { minWorkers, maxWorkers } = (value ?? {}) as Record<string, unknown>;
  if (Number.isInteger(minWorkers) && Number.isInteger(maxWorkers) && (maxWorkers as number) < (minWorkers as number)) {
    problems.push({
      line: lineOf(rangeOf(doc, ['maxWorkers'], true)),
      text: `maxWorkers (${String(maxWorkers)}) is below minWorkers (${String(minWorkers)})`,
    });
  }
  if (problems.length > 0) throw invalid(fileName, problems);
  return deepFreeze(value as ModelConfigFile);
}

/** The yaml package, loaded on the first config parsed (a worker, handed its config, never loads it). */
function yaml(): typeof import('yaml') {
  return createRequire(import.meta.url)('yaml') as typeof import('yaml');
}

/** What `deviceType: gpu` changes in the defaults (docs/guides/gpu.md). */
export const GPU_DEFAULTS = Object.freeze({ batchSize: 8, maxBatchDelayMs: 'auto', intraOpNumThreads: 1 } as const);

/** Fills in defaults and converts TorchServe's key names to Kiln's unit-bearing ones. */
export function resolveModelConfig(file: ModelConfigFile = {}): ModelConfig {
  const d = MODEL_CONFIG_DEFAULTS;
  const minWorkers = file.minWorkers ?? d.minWorkers;
  const deviceType = file.deviceType ?? d.deviceType;
  return Object.freeze({
    minWorkers,
    maxWorkers: file.maxWorkers ?? Math.max(1, minWorkers),
    scaleUpAfterMs: file.scaleUpAfter ?? d.scaleUpAfterMs,
    scaleDownAfterS: file.scaleDownAfter ?? d.scaleDownAfterS,
    // On a GPU a batch costs little more than one request: batching is on unless the file says.
    batchSize: file.batchSize ?? (deviceType === 'gpu' ? GPU_DEFAULTS.batchSize : d.batchSize),
    maxBatchDelayMs: file.maxBatchDelay ?? (deviceType === 'gpu' ? GPU_DEFAULTS.maxBatchDelayMs : d.maxBatchDelayMs),
    maxLatencyMs: file.maxLatencyMs,
    responseTimeoutS: file.responseTimeout ?? d.responseTimeoutS,
    startupTimeoutS: file.startupTimeout ?? d.startupTimeoutS,
    jobQueueSize: file.jobQueueSize ?? d.jobQueueSize,
    clientTimeoutMs: file.clientTimeoutInMills ?? d.clientTimeoutMs,
    deviceType,
    deviceIds: Object.freeze([...(file.deviceIds ?? [])]),
    executionProviders: Object.freeze([...(file.executionProviders ?? (deviceType === 'gpu' ? ['cuda', 'cpu'] : ['cpu']))]),
    fallback: file.fallback ?? true,
    // A GPU worker's CPU threads only feed the GPU: one each, unless the file says.
    intraOpNumThreads: file.intraOpNumThreads ?? (deviceType === 'gpu' ? GPU_DEFAULTS.intraOpNumThreads : undefined),
    isolation: file.isolation,
    workerHeapLimitMb: file.workerHeapLimitMb,
    allowNonFinite: file.allowNonFinite ?? false,
    handler: Object.freeze({ ...(file.handler ?? {}) }),
  });
}

function invalid(fileName: string, found: { line: number; text: string }[]) {
  const lines = [...found].sort((a, b) => a.line - b.line).map((p) => `${fileName}:${p.line}: ${p.text}`);
  return sdkError('KILN_ERR_MODEL_CONFIG_INVALID', `${fileName} is not a valid model config:\n  ${lines.join('\n  ')}`, {
    details: { file: fileName, problems: lines },
  });
}

/** Start offset of the node at `path` (of its key when `key` is set), for line numbers. */
function rangeOf(doc: Document, path: string[], key: boolean): number | undefined {
  const parentPath = key ? path.slice(0, -1) : path;
  const node = parentPath.length === 0 ? doc.contents : doc.getIn(parentPath, true);
  if (!key) return (node as { range?: [number, number, number] } | undefined)?.range?.[0];
  const { isMap, isScalar } = yaml();
  if (!isMap(node)) return undefined;
  const name = path[path.length - 1];
  const pair = node.items.find((item) => isScalar(item.key) && String(item.key.value) === name);
  return (pair?.key as { range?: [number, number, number] } | undefined)?.range?.[0];
}

/** The known key nearest to a misspelt one, ignoring case, `_` and `-`, within two edits. */
function suggest(key: string): string {
  const norm = (k: string) => k.toLowerCase().replace(/[_-]/g, '');
  let best: { key: string; distance: number } | undefined;
  for (const known of KNOWN_KEYS) {
    const distance = editDistance(norm(key), norm(known));
    if (distance <= 2 && (best === undefined || distance < best.distance)) best = { key: known, distance };
  }
  return best === undefined ? ` (known keys: ${KNOWN_KEYS.join(', ')})` : ` (did you mean "${best.key}"?)`;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}
