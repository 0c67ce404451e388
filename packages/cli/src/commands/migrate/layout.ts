import type { BuiltinHandlerName } from '@kiln/handler-sdk/runtime';

/*
 * Where `kiln migrate` puts each file of a TorchServe model, and the `kiln archive` command that
 * archives the result. The server names the same command when it is given a TorchServe .mar
 * (packages/server/src/archive/torchserve-archive.ts); test/cli/migrate.test.ts checks they agree.
 */

/** The Python sources, weights and settings kept for reference; never archived. */
export const TORCHSERVE_DIR = 'torchserve';
/** Extra files, at the paths they had in the .mar: `--extra-files extra` puts them back at the archive root. */
export const EXTRA_DIR = 'extra';
export const CONFIG_FILE = 'model-config.yaml';
export const HANDLER_FILE = 'src/handler.ts';
export const EXPORT_SCRIPT = `${TORCHSERVE_DIR}/export_onnx.py`;
export const EXPORT_PATH = 'model-store';

/** TorchServe's built-in handlers that Kiln has a built-in for (`base_handler` takes tensors, as Kiln's `tensor` does). */
export const BUILTIN_EQUIVALENTS: Readonly<Record<string, BuiltinHandlerName>> = {
  image_classifier: 'image_classifier',
  object_detector: 'object_detector',
  image_segmenter: 'image_segmenter',
  base_handler: 'tensor',
};

/** TorchServe's other built-ins (model_packaging_utils.py), for which a skeleton is written. */
export const OTHER_TORCHSERVE_BUILTINS = ['text_classifier', 'dali_image_classifier', 'vllm_handler', 'trt_llm_handler'];

/** `ts.torch_handler.image_classifier:handle` → `image_classifier`; undefined when it names no TorchServe built-in. */
export function torchServeBuiltin(handler: string): string | undefined {
  const name = handlerModule(handler).replace(/^ts\.torch_handler\./, '');
  return name in BUILTIN_EQUIVALENTS || OTHER_TORCHSERVE_BUILTINS.includes(name) ? name : undefined;
}

/** The module part of TorchServe's `module[:function]` handler string. */
export function handlerModule(handler: string): string {
  return handler.replace(/:[A-Za-z_]\w*$/, '');
}

/** The weights file the project archives: an .onnx as it is, else the file the export script writes (`model.pt` → `model.onnx`). */
export function onnxName(serializedFile: string): string {
  const base = serializedFile.split('/').pop()!;
  if (base.endsWith('.onnx')) return base;
  const dot = base.lastIndexOf('.');
  return `${dot > 0 ? base.slice(0, dot) : base}.onnx`;
}

/** Whether a file of the TorchServe model is an extra file that Kiln serves with (not Python source). */
export function isExtraFile(path: string, own: ReadonlySet<string>): boolean {
  return !own.has(path) && !path.endsWith('.py');
}

export interface ArchiveCommandInput {
  modelName: string;
  modelVersion: string;
  serializedFile: string | undefined;
  /** A Kiln built-in name, or HANDLER_FILE. */
  handler: string;
  hasExtraFiles: boolean;
}

/** The command, run in the project folder, that archives the migrated model into model-store/. */
export function archiveCommand(input: ArchiveCommandInput): string {
  return [
    'kiln archive',
    `--model-name ${input.modelName}`,
    `-v ${shellWord(input.modelVersion)}`,
    ...(input.serializedFile === undefined ? [] : [`--serialized-file ${onnxName(input.serializedFile)}`]),
    `--handler ${input.handler}`,
    `-c ${CONFIG_FILE}`,
    ...(input.hasExtraFiles ? [`--extra-files ${EXTRA_DIR}`] : []),
    `--export-path ${EXPORT_PATH}`,
    '-f',
  ].join(' ');
}

/** A word as a POSIX shell reads it: as it is when plain, else single-quoted. */
export function shellWord(text: string): string {
  return /^[\w.,:@%+=/-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}
