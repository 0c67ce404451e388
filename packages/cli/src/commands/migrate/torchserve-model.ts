import { basename } from 'node:path';
import { MANIFEST_PATH, checkModelName } from '@kiln/handler-sdk/runtime';
import { cliError } from '../../errors.js';
import { handlerModule, torchServeBuiltin } from './layout.js';
import type { ModelFiles } from './model-files.js';

/** What each file of a TorchServe model is, from its MANIFEST.json, the options, or a look at the files. */
export interface TorchServeModel {
  modelName: string;
  modelVersion: string;
  /** The handler as TorchServe names it: a built-in, `module[:function]` or `file.py`. */
  handler: string;
  /** The handler's .py file in the model; undefined for a built-in. */
  handlerFile: string | undefined;
  serializedFile: string | undefined;
  /** The eager model's class (`--model-file`). */
  modelFile: string | undefined;
  requirementsFile: string | undefined;
  configFile: string | undefined;
  /** True when MAR-INF/MANIFEST.json was there to say all this. */
  fromManifest: boolean;
}

export interface ModelOverrides {
  modelName?: string;
  version?: string;
  handler?: string;
  serializedFile?: string;
}

interface TorchServeManifest {
  runtime?: unknown;
  sdkVersion?: unknown;
  files?: unknown;
  model?: Record<string, unknown>;
}

/** Weights torch-model-archiver is given as --serialized-file. */
const WEIGHTS = /\.(onnx|pt|pth|bin|safetensors|ckpt|pt2)$/;
/** A file that defines a TorchServe handler's hooks. */
const HANDLER_SOURCE = /^\s*def (handle|preprocess|inference|postprocess)\(|\bBaseHandler\b/m;
/** A file that defines a torch.nn.Module, as --model-file does. */
const MODEL_SOURCE = /^class \w+\([^)]*\bModule\)/m;

export function describeModel(input: string, files: ModelFiles, overrides: ModelOverrides): TorchServeModel {
  const manifest = readManifest(input, files);
  const model = manifest?.model ?? {};
  const field = (key: string) => (typeof model[key] === 'string' && model[key] !== '' ? model[key] : undefined);
  const inModel = (path: string | undefined) => (path !== undefined && files.paths.includes(path) ? path : undefined);
  const topLevel = files.paths.filter((p) => !p.includes('/'));

  const modelName = overrides.modelName ?? field('modelName') ?? basename(input).replace(/\.(mar|tar\.gz|tgz|zip)$/, '');
  checkModelName(modelName, overrides.modelName === undefined ? `the model name taken from ${input} (pass --model-name)` : '--model-name');
  const handler = overrides.handler ?? field('handler') ?? findHandler(files, topLevel);
  const module = handlerModule(handler);
  const handlerFile = inModel(module) ?? inModel(`${module}.py`);
  if (handlerFile === undefined && torchServeBuiltin(handler) === undefined) {
    throw cliError(
      'KILN_ERR_USAGE',
      `the handler "${handler}" is neither a .py file of ${input} nor a TorchServe built-in handler (image_classifier, object_detector, image_segmenter, base_handler, text_classifier); pass --handler`,
      { details: { handler } },
    );
  }
  const serializedFile = overrides.serializedFile ?? field('serializedFile') ?? findWeights(input, topLevel);
  if (serializedFile !== undefined && inModel(serializedFile) === undefined) {
    const named = overrides.serializedFile === undefined ? `model.serializedFile of ${MANIFEST_PATH}` : '--serialized-file';
    throw cliError('KILN_ERR_FILE_NOT_FOUND', `${named} names ${serializedFile}, which ${input} does not hold`, {
      details: { flag: '--serialized-file', path: serializedFile },
    });
  }
  const others = topLevel.filter((p) => p.endsWith('.py') && p !== handlerFile);
  const modelSources = others.filter((p) => MODEL_SOURCE.test(files.text(p) ?? ''));
  return {
    modelName,
    modelVersion: overrides.version ?? field('modelVersion') ?? '1.0',
    handler,
    handlerFile,
    serializedFile,
    modelFile: manifest === undefined ? (modelSources.length === 1 ? modelSources[0] : undefined) : inModel(field('modelFile')),
    requirementsFile: inModel(field('requirementsFile') ?? (manifest === undefined ? 'requirements.txt' : undefined)),
    configFile: inModel(field('configFile')) ?? findConfig(manifest === undefined, topLevel),
    fromManifest: manifest !== undefined,
  };
}

function readManifest(input: string, files: ModelFiles): TorchServeManifest | undefined {
  if (!files.paths.includes(MANIFEST_PATH)) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(files.text(MANIFEST_PATH) ?? '');
  } catch (error) {
    throw cliError('KILN_ERR_USAGE', `${input}: ${MANIFEST_PATH} is not JSON: ${(error as Error).message}`, { details: { path: input } });
  }
  const manifest = (typeof value === 'object' && value !== null ? value : {}) as TorchServeManifest;
  if (manifest.runtime === 'node' || manifest.sdkVersion !== undefined || manifest.files !== undefined) {
    throw cliError(
      'KILN_ERR_USAGE',
      `${input} is already a Kiln archive (its ${MANIFEST_PATH} has Kiln's runtime "node", sdkVersion or files); serve it as it is: kiln serve --models ${input}`,
      { details: { path: input } },
    );
  }
  return manifest;
}

/** The one top-level .py file that defines a handler's hooks. */
function findHandler(files: ModelFiles, topLevel: string[]): string {
  const python = topLevel.filter((p) => p.endsWith('.py'));
  const found = python.filter((p) => HANDLER_SOURCE.test(files.text(p) ?? ''));
  if (found.length === 1) return found[0]!;
  const why =
    found.length === 0
      ? `none of its .py files (${python.join(', ') || 'there are none'}) defines handle, preprocess, inference or postprocess`
      : `several .py files look like handlers (${found.join(', ')})`;
  throw cliError(
    'KILN_ERR_USAGE',
    `cannot tell the handler: the model has no ${MANIFEST_PATH} and ${why}; pass --handler FILE.py, or a built-in name such as --handler image_classifier`,
    { details: { candidates: found } },
  );
}

function findWeights(input: string, topLevel: string[]): string | undefined {
  const found = topLevel.filter((p) => WEIGHTS.test(p));
  if (found.length <= 1) return found[0];
  throw cliError('KILN_ERR_USAGE', `cannot tell the weights: ${input} has several (${found.join(', ')}); pass --serialized-file NAME`, {
    details: { candidates: found },
  });
}

/** Without a manifest: model-config.yaml, else the one YAML file there is. */
function findConfig(guess: boolean, topLevel: string[]): string | undefined {
  if (!guess) return undefined;
  if (topLevel.includes('model-config.yaml')) return 'model-config.yaml';
  const yaml = topLevel.filter((p) => /\.ya?ml$/.test(p));
  return yaml.length === 1 ? yaml[0] : undefined;
}
