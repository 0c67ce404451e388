import { existsSync, statSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { basename, join, relative, resolve, sep } from 'node:path';
import { MANIFEST_PATH } from '@kiln/handler-sdk/runtime';
import { cliError } from '../../errors.js';
import { convertConfig, type ConfigConversion } from './convert-config.js';
import { EXPORTABLE, exportScript } from './export-script.js';
import { handlerSkeleton, readPythonHandler, type PythonHandler } from './handler-skeleton.js';
import {
  BUILTIN_EQUIVALENTS,
  CONFIG_FILE,
  EXPORT_PATH,
  EXPORT_SCRIPT,
  EXTRA_DIR,
  HANDLER_FILE,
  TORCHSERVE_DIR,
  archiveCommand,
  isExtraFile,
  onnxName,
  torchServeBuiltin,
} from './layout.js';
import { migrationDoc, projectFiles } from './migration-doc.js';
import { readModelFiles } from './model-files.js';
import { describeModel, type ModelOverrides, type TorchServeModel } from './torchserve-model.js';

export interface MigrateOptions extends ModelOverrides {
  input: string;
  out: string | undefined;
  force: boolean;
  cwd: string;
}

/** How the handler was carried over. */
export type HandlerOutcome =
  { kind: 'builtin'; torchServe: string; kiln: string } | { kind: 'skeleton'; python: PythonHandler; builtin?: string };

export interface MigrateResult {
  dir: string;
  model: TorchServeModel;
  handler: HandlerOutcome;
  config: ConfigConversion;
  /** Files written, relative to `dir`, sorted; the folders extra/ and torchserve/ as one line each. */
  written: string[];
  extraFiles: string[];
  warnings: string[];
  /** The commands to run in `dir`, in order. */
  next: string[];
  archive: string;
}

/** Reads a TorchServe model and writes a Kiln project for it. */
export async function migrate(options: MigrateOptions): Promise<MigrateResult> {
  const input = resolve(options.cwd, options.input);
  if (!existsSync(input)) {
    throw cliError('KILN_ERR_FILE_NOT_FOUND', `${options.input}: no such file or folder; pass a TorchServe .mar or a model folder`, {
      details: { path: input },
    });
  }
  const listed = await readModelFiles(input);
  // Described once for the default --out (its name), and again without what is inside --out.
  const firstModel = describeModel(input, listed, options);
  const dir = resolve(options.cwd, options.out ?? `${firstModel.modelName}-kiln`);
  const where = relative(options.cwd, dir) || '.';
  if (dir === input || input.startsWith(`${dir}${sep}`)) {
    throw cliError('KILN_ERR_USAGE', `--out ${where} holds the model being migrated; choose a folder outside it`, {
      details: { path: dir },
    });
  }
  await checkTarget(dir, where, options.force);
  // A folder's own output (kiln migrate . --out kiln) is not part of the model.
  const inside = relative(input, dir).split(sep).join('/');
  const files = { ...listed, paths: listed.paths.filter((p) => p !== inside && !p.startsWith(`${inside}/`)) };
  const model = describeModel(input, files, options);

  const warnings: string[] = [];
  const config = convertConfig(model.configFile === undefined ? undefined : files.text(model.configFile), model.configFile ?? CONFIG_FILE);
  warnings.push(...config.dropped.map((line) => `${CONFIG_FILE}: dropped ${line}`));

  const own = new Set(
    [MANIFEST_PATH, model.serializedFile, model.handlerFile, model.modelFile, model.requirementsFile, model.configFile].filter(
      (path): path is string => path !== undefined,
    ),
  );
  const extraFiles = files.paths.filter((p) => isExtraFile(p, own));
  const destination = (path: string): string | undefined => {
    if (!files.paths.includes(path)) return undefined;
    if (path === model.serializedFile && path.endsWith('.onnx')) return join(dir, basename(path));
    if (extraFiles.includes(path)) return join(dir, EXTRA_DIR, ...path.split('/'));
    return join(dir, TORCHSERVE_DIR, ...path.split('/'));
  };
  await mkdir(dir, { recursive: true });
  await files.copy(destination);

  const handler = carryHandler(model, files.text(model.handlerFile ?? '') ?? '');
  const written = [CONFIG_FILE, 'MIGRATION.md', 'package.json'];
  await writeFile(join(dir, CONFIG_FILE), config.text);
  if (handler.kind === 'skeleton') {
    await mkdir(join(dir, 'src'), { recursive: true });
    await writeFile(join(dir, HANDLER_FILE), handlerSkeleton(handler.python, handler.builtin));
    written.push(HANDLER_FILE, 'tsconfig.json');
  }
  warnings.push(...handlerWarnings(model, handler, files.paths));

  const archive = archiveCommand({
    modelName: model.modelName,
    modelVersion: model.modelVersion,
    serializedFile: model.serializedFile,
    handler: handler.kind === 'builtin' ? handler.kiln : HANDLER_FILE,
    hasExtraFiles: extraFiles.length > 0,
  });
  const next: string[] = [];
  const weights = model.serializedFile;
  if (weights !== undefined && !weights.endsWith('.onnx')) {
    if (EXPORTABLE.test(weights)) {
      const modelClass =
        model.modelFile === undefined ? undefined : /^class (\w+)\([^)]*\bModule\)/m.exec(files.text(model.modelFile) ?? '')?.[1];
      const builtin = handler.kind === 'builtin' ? handler.kiln : undefined;
      await writeFile(join(dir, EXPORT_SCRIPT), exportScript({ serializedFile: weights, modelFile: model.modelFile, modelClass, builtin }));
      written.push(EXPORT_SCRIPT);
      next.push(`python ${EXPORT_SCRIPT}`);
    } else {
      warnings.push(
        `the weights ${weights} are neither ONNX nor a PyTorch checkpoint kiln migrate writes an export script for; export the model to ONNX from PyTorch (torch.onnx.export) as ${onnxName(weights)}, with a dynamic batch dimension`,
      );
    }
  }
  next.push(archive, `kiln serve --models ${model.modelName}=${EXPORT_PATH}/${model.modelName}.mar`);

  const result: MigrateResult = { dir, model, handler, config, written, extraFiles, warnings, next, archive };
  for (const [path, text] of Object.entries(projectFiles(result))) await writeFile(join(dir, path), text);
  await writeFile(join(dir, 'MIGRATION.md'), migrationDoc(result, options.input, files.format));
  result.written = [
    ...written.filter((path) => !path.startsWith(`${TORCHSERVE_DIR}/`)),
    ...(extraFiles.length > 0 ? [`${EXTRA_DIR}/`] : []),
    `${TORCHSERVE_DIR}/`,
  ].sort();
  return result;
}

async function checkTarget(dir: string, where: string, force: boolean): Promise<void> {
  if (!existsSync(dir)) return;
  if (!statSync(dir).isDirectory()) {
    throw cliError('KILN_ERR_USAGE', `--out ${where} is a file; pass a folder to write the project into`, { details: { path: dir } });
  }
  if (!force && (await readdir(dir)).length > 0) {
    throw cliError('KILN_ERR_OUTPUT_EXISTS', `${where} already has files; pass --force (-f) to write into it, or choose another --out`, {
      details: { path: dir },
    });
  }
}

function carryHandler(model: TorchServeModel, source: string): HandlerOutcome {
  const builtin = model.handlerFile === undefined ? torchServeBuiltin(model.handler) : undefined;
  const kiln = builtin === undefined ? undefined : BUILTIN_EQUIVALENTS[builtin];
  if (builtin !== undefined && kiln !== undefined) return { kind: 'builtin', torchServe: builtin, kiln };
  if (model.handlerFile === undefined) {
    return { kind: 'skeleton', python: { file: undefined, className: undefined, methods: {}, entry: undefined }, builtin };
  }
  const entry = /:([A-Za-z_]\w*)$/.exec(model.handler)?.[1];
  return { kind: 'skeleton', python: readPythonHandler(source, `${TORCHSERVE_DIR}/${model.handlerFile}`, entry) };
}

function handlerWarnings(model: TorchServeModel, handler: HandlerOutcome, paths: string[]): string[] {
  const warnings: string[] = [];
  if (handler.kind === 'skeleton') {
    const what = handler.python.file ?? `TorchServe's built-in ${handler.builtin}, which Kiln has no built-in for,`;
    warnings.push(
      `${HANDLER_FILE} is a skeleton: port ${what} into it. Until then it takes {"inputs": ...} JSON and answers the model's outputs`,
    );
  } else if (handler.kiln === 'tensor') {
    warnings.push(
      `TorchServe's base_handler became Kiln's tensor built-in, which takes named tensors as JSON ({"inputs": ...}); clients change`,
    );
  } else if (handler.kiln === 'image_segmenter') {
    warnings.push("Kiln's image_segmenter answers each pixel's class; TorchServe's answered [class, probability] pairs");
  }
  if (model.requirementsFile !== undefined) {
    warnings.push(
      `${model.requirementsFile} lists Python packages, which Kiln never installs; kept as ${TORCHSERVE_DIR}/${model.requirementsFile}. npm packages the handler imports go in package.json: kiln archive bundles them`,
    );
  }
  for (const path of paths.filter((p) => p.endsWith('.py') && p !== model.handlerFile && p !== model.modelFile)) {
    warnings.push(`${path} is Python: kept in ${TORCHSERVE_DIR}/ and not archived; port what the handler used from it`);
  }
  return warnings;
}
