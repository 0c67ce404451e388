import { MANIFEST_PATH } from '@kiln/handler-sdk/runtime';
import { sdkError } from '@kiln/handler-sdk/errors';

/*
 * An archive built by torch-model-archiver has the same layout as Kiln's (MAR-INF/MANIFEST.json, files
 * flat at the root) but a Python handler and PyTorch weights. Loading one fails on the manifest; the
 * error names the commands that convert it. The project layout those commands assume is the one
 * `kiln migrate` writes (packages/cli/src/commands/migrate/layout.ts); test/cli/migrate.test.ts checks
 * that the two give the same `kiln archive` command.
 */

/** TorchServe's built-in handlers that Kiln has a built-in for, by TorchServe's name. */
const BUILTIN_EQUIVALENTS: Readonly<Record<string, string>> = {
  image_classifier: 'image_classifier',
  object_detector: 'object_detector',
  image_segmenter: 'image_segmenter',
  base_handler: 'tensor',
};

interface TorchServeManifest {
  runtime?: unknown;
  sdkVersion?: unknown;
  files?: unknown;
  model?: {
    modelName?: unknown;
    modelVersion?: unknown;
    serializedFile?: unknown;
    handler?: unknown;
    modelFile?: unknown;
    requirementsFile?: unknown;
    configFile?: unknown;
  };
}

/**
 * KILN_ERR_MANIFEST_INVALID naming `kiln migrate` when the manifest is TorchServe's (a runtime other
 * than "node", and neither of Kiln's own sdkVersion and files), or undefined when it is not.
 */
export function torchServeArchiveError(path: string, manifestBytes: Buffer, files: Iterable<string>) {
  let value: unknown;
  try {
    value = JSON.parse(manifestBytes.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const manifest = value as TorchServeManifest;
  const kilnFields = manifest.runtime === 'node' || manifest.sdkVersion !== undefined || manifest.files !== undefined;
  if (kilnFields || typeof manifest.model !== 'object' || manifest.model === null) return undefined;
  const model = manifest.model;
  const name = typeof model.modelName === 'string' && /^[A-Za-z0-9][A-Za-z0-9_\-.]*$/.test(model.modelName) ? model.modelName : 'model';
  const version = typeof model.modelVersion === 'string' && model.modelVersion !== '' ? model.modelVersion : '1.0';
  const out = `${name}-kiln`;
  const serialized = typeof model.serializedFile === 'string' ? model.serializedFile : undefined;
  const handlerValue = typeof model.handler === 'string' ? model.handler : '';
  const fileList = [...files];
  const archive = [
    'kiln archive',
    `--model-name ${name}`,
    `-v ${shellWord(version)}`,
    ...(serialized === undefined ? [] : [`--serialized-file ${onnxName(serialized)}`]),
    `--handler ${kilnHandler(handlerValue, fileList)}`,
    '-c model-config.yaml',
    ...(hasExtraFiles(model, fileList) ? ['--extra-files extra'] : []),
    '--export-path model-store',
    '-f',
  ].join(' ');
  const runtime = typeof manifest.runtime === 'string' ? `runtime "${manifest.runtime}"` : 'no runtime';
  const exportStep = serialized?.endsWith('.onnx') === false ? `, export the weights to ONNX as ${out}/MIGRATION.md says,` : '';
  return sdkError(
    'KILN_ERR_MANIFEST_INVALID',
    `${path} is a TorchServe archive, not a Kiln one: its ${MANIFEST_PATH} says ${runtime} and has no sdkVersion or files. ` +
      `Kiln runs ONNX models behind TypeScript handlers, so convert it into a Kiln project${exportStep} and archive that:\n` +
      `  kiln migrate ${shellWord(path)} --out ${out}\n` +
      `  cd ${out}\n` +
      `  ${archive}`,
    { details: { path, torchServe: true, migrate: `kiln migrate ${shellWord(path)} --out ${out}`, archive } },
  );
}

/** `model.pt` → `model.onnx`: the file the export script writes. */
function onnxName(serializedFile: string): string {
  const base = serializedFile.split('/').pop()!;
  if (base.endsWith('.onnx')) return base;
  const dot = base.lastIndexOf('.');
  return `${dot > 0 ? base.slice(0, dot) : base}.onnx`;
}

/** The Kiln built-in for a TorchServe built-in, or the TypeScript skeleton `kiln migrate` writes. */
function kilnHandler(handler: string, files: string[]): string {
  const module = handler.replace(/:[A-Za-z_]\w*$/, '');
  if (files.includes(module) || files.includes(`${module}.py`)) return 'src/handler.ts';
  return BUILTIN_EQUIVALENTS[module.replace(/^ts\.torch_handler\./, '')] ?? 'src/handler.ts';
}

/** Whether any file is left for `extra/` once the manifest's own files and Python sources are set aside. */
function hasExtraFiles(model: NonNullable<TorchServeManifest['model']>, files: string[]): boolean {
  const handlerModule = typeof model.handler === 'string' ? model.handler.replace(/:[A-Za-z_]\w*$/, '') : '';
  const own = new Set<unknown>([
    MANIFEST_PATH,
    model.serializedFile,
    model.modelFile,
    model.requirementsFile,
    model.configFile,
    handlerModule,
    `${handlerModule}.py`,
  ]);
  return files.some((file) => !own.has(file) && !file.endsWith('.py'));
}

/** A word as a POSIX shell reads it: as it is when plain, else single-quoted. */
function shellWord(text: string): string {
  return /^[\w.,:@%+=/-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}
