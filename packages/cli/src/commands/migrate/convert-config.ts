import { MODEL_CONFIG_KEYS, parseModelConfig } from '@kiln/handler-sdk/runtime';
import { isKilnError } from '@kiln/handler-sdk/errors';
import { isMap, isScalar, parseDocument, type Document } from 'yaml';
import { cliError } from '../../errors.js';

/*
 * TorchServe's model-config.yaml to Kiln's. Most keys have the same names and units (DESIGN
 * decision 7), so a key Kiln knows is kept as written, comments and all; a key Kiln lacks, or a
 * value Kiln would refuse, is dropped with one warning saying why. TorchServe ignores such keys
 * silently; Kiln's loader refuses them, so leaving one in would stop the model from loading.
 */

/** TorchServe keys Kiln has no counterpart for, and why (reference: TorchServe's ModelConfig.java). */
const UNSUPPORTED: Readonly<Record<string, string>> = {
  parallelType: "model parallelism across GPUs (pp, pptp, custom) is PyTorch's; Kiln runs one ONNX Runtime session per worker",
  parallelLevel: "model parallelism across GPUs is PyTorch's; Kiln runs one ONNX Runtime session per worker",
  torchrun: 'torchrun launches PyTorch processes; Kiln workers are threads or processes of the server (isolation)',
  maxRetryTimeoutInSec: 'Kiln restarts a failed worker with a backoff of at most 30 s and no time limit (docs/reference/lifecycle.md)',
  useJobTicket: 'Kiln answers 503 with Retry-After as soon as jobQueueSize requests wait; there are no job tickets',
  sequenceBatching: 'stateful sequence batching is not supported',
  sequenceMaxIdleMSec: 'stateful sequence batching is not supported',
  sequenceTimeoutMSec: 'stateful sequence batching is not supported',
  maxSequenceJobQueueSize: 'stateful sequence batching is not supported',
  maxNumSequence: 'stateful sequence batching is not supported',
  continuousBatching:
    'continuous batching (for streaming LLM handlers) is not supported; Kiln forms a batch per batchSize and maxBatchDelay',
  asyncCommunication: "TorchServe's asynchronous worker protocol has no counterpart",
  useVenv: 'there is no Python: a Kiln handler is bundled with its npm dependencies when it is archived',
  pt2: 'torch.compile settings; the model runs on ONNX Runtime (choose CUDA or TensorRT with executionProviders)',
  pippy: "PiPPy pipeline parallelism is PyTorch's",
  deepspeed: "DeepSpeed is PyTorch's",
};

const BACKEND_KEY =
  'TorchServe passed it to the handler (context.model_yaml_config); Kiln passes only the handler: section, so move it under handler: if the handler reads it';

export interface ConfigConversion {
  /** The converted model-config.yaml. */
  text: string;
  /** The keys carried over, in file order. */
  kept: string[];
  /** One line per dropped key: `parallelType: why`. */
  dropped: string[];
}

/** Converts TorchServe's model-config.yaml text (undefined: the model had none). */
export function convertConfig(source: string | undefined, name: string): ConfigConversion {
  const doc = parseDocument(source ?? '', { uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw cliError('KILN_ERR_USAGE', `${name} is not valid YAML: ${doc.errors[0]!.message.split('\n')[0]}`, { details: { file: name } });
  }
  const dropped: string[] = [];
  const drop = (key: string, why: string) => {
    doc.delete(key);
    dropped.push(`${key}: ${why}`);
  };
  if (doc.contents !== null && !isMap(doc.contents)) {
    throw cliError('KILN_ERR_USAGE', `${name} is not a mapping of keys to values`, { details: { file: name } });
  }
  for (const pair of isMap(doc.contents) ? [...doc.contents.items] : []) {
    const key = keyOf(pair.key);
    if (!(key in MODEL_CONFIG_KEYS)) {
      drop(key, UNSUPPORTED[key] ?? BACKEND_KEY);
      continue;
    }
    let value: unknown = doc.get(key);
    if (key === 'deviceType' && typeof value === 'string' && value !== value.toLowerCase()) {
      value = value.toLowerCase(); // TorchServe takes any case (`GPU`); Kiln's schema takes lower case
      doc.set(key, value);
    }
    const problem = refusal(key, value);
    if (problem !== undefined) drop(key, `${JSON.stringify(value)} is not a value Kiln takes (${problem})`);
  }
  const minWorkers = doc.get('minWorkers');
  const maxWorkers = doc.get('maxWorkers');
  if (typeof minWorkers === 'number' && typeof maxWorkers === 'number' && maxWorkers < minWorkers) {
    drop('maxWorkers', `${maxWorkers} is below minWorkers (${minWorkers}), which Kiln refuses; without it maxWorkers is minWorkers`);
  }
  header(doc, dropped, source === undefined);
  // A file with no keys left is its comments alone (yaml would write `null` or `{}`).
  const text = isMap(doc.contents) && doc.contents.items.length > 0 ? doc.toString() : `${commentLines(doc.commentBefore)}\n`;
  parseModelConfig(text, 'the converted model-config.yaml'); // every key was checked above: a failure here is a bug
  const kept = isMap(doc.contents) ? doc.contents.items.map((pair) => keyOf(pair.key)) : [];
  return { text, kept, dropped };
}

function commentLines(comment: string | null | undefined): string {
  return (comment ?? '')
    .split('\n')
    .map((line) => (line === '' ? '' : `#${line}`))
    .join('\n');
}

function keyOf(node: unknown): string {
  return isScalar(node) ? String(node.value) : String(node);
}

/** Why Kiln's loader would refuse `key: value`, or undefined when it takes it. */
function refusal(key: string, value: unknown): string | undefined {
  try {
    parseModelConfig(JSON.stringify({ [key]: value }), 'model-config.yaml');
    return undefined;
  } catch (error) {
    if (!isKilnError(error)) throw error;
    return error.message
      .split('\n')
      .slice(1)
      .map((line) => line.trim().replace(/^[^:]+:\d+: (\w+: )?/, ''))
      .join('; ');
  }
}

function header(doc: Document, dropped: string[], missing: boolean): void {
  const lines = [
    ' Converted from TorchServe by kiln migrate; the keys are documented in docs/reference/model-config.md of Kiln.',
    ...(missing ? [" The TorchServe model had no model-config.yaml: Kiln's defaults apply."] : []),
    ...(dropped.length > 0 ? [' Dropped, as Kiln has no such setting or refuses the value:', ...dropped.map((line) => `   ${line}`)] : []),
  ];
  doc.commentBefore = doc.commentBefore ? `${lines.join('\n')}\n\n${doc.commentBefore}` : lines.join('\n');
}
