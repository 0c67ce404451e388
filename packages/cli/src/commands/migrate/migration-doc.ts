import { basename } from 'node:path';
import { SDK_VERSION } from '@kiln/handler-sdk/runtime';
import type { ArchiveFormat } from '@kiln/server';
import { CLI_VERSION } from '../../version.js';
import { packageName } from '../init/init.js';
import { EXPORTABLE } from './export-script.js';
import { PYTHON_METHODS } from './handler-skeleton.js';
import { CONFIG_FILE, EXPORT_PATH, EXPORT_SCRIPT, EXTRA_DIR, HANDLER_FILE, TORCHSERVE_DIR, onnxName } from './layout.js';
import type { MigrateResult } from './migrate.js';

/** package.json (and tsconfig.json for a TypeScript handler), as `kiln init` writes them. */
export function projectFiles(result: MigrateResult): Record<string, string> {
  const { model, handler } = result;
  const exportsWeights = model.serializedFile !== undefined && EXPORTABLE.test(model.serializedFile);
  const pkg = {
    name: packageName(basename(result.dir)),
    version: '0.1.0',
    private: true,
    type: 'module',
    description: `${model.modelName} ${model.modelVersion}, migrated from TorchServe by kiln migrate`,
    scripts: {
      ...(exportsWeights ? { 'export-onnx': `python ${EXPORT_SCRIPT}` } : {}),
      archive: result.archive,
      serve: result.next[result.next.length - 1]!,
    },
    ...(handler.kind === 'skeleton' ? { dependencies: { '@kiln/handler-sdk': `^${SDK_VERSION}` } } : {}),
    devDependencies: { '@kiln/cli': `^${CLI_VERSION}` },
  };
  const files: Record<string, string> = { 'package.json': `${JSON.stringify(pkg, null, 2)}\n` };
  if (handler.kind === 'skeleton') {
    const tsconfig = {
      compilerOptions: {
        target: 'ES2022',
        lib: ['ES2023'],
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        noUncheckedIndexedAccess: true,
        noImplicitOverride: true,
        esModuleInterop: true,
        skipLibCheck: true,
        noEmit: true,
      },
      include: ['src'],
    };
    files['tsconfig.json'] = `${JSON.stringify(tsconfig, null, 2)}\n`;
  }
  return files;
}

const FORMAT_NAMES: Record<ArchiveFormat, string> = { zip: 'a .mar', tgz: 'a .tar.gz', directory: 'a folder' };

/** MIGRATION.md: what was done, every warning, and the commands that finish the move. */
export function migrationDoc(result: MigrateResult, input: string, format: ArchiveFormat): string {
  const { model, handler } = result;
  const lines: string[] = [
    `# Migrating ${model.modelName} from TorchServe`,
    '',
    `\`kiln migrate\` wrote this Kiln project from the TorchServe model \`${input}\` (${FORMAT_NAMES[format]}), ` +
      `${model.modelName} version ${model.modelVersion}. Kiln serves ONNX models behind TypeScript handlers, so Python ` +
      'code and PyTorch weights do not carry over as they are. This page says what was done, what is left, and the commands.',
    '',
    '## What was done',
    '',
  ];
  const done = (text: string) => lines.push(`- ${text}`);
  done(
    model.fromManifest
      ? `Each file's part (weights, handler, config, extras) was read from the model's \`MAR-INF/MANIFEST.json\`.`
      : 'The model had no `MAR-INF/MANIFEST.json`, so the handler, the weights and the config were told apart by looking at the files (and the options given): check them below.',
  );
  const kept = result.config.kept.map((k) => `\`${k}\``).join(', ') || 'none';
  done(
    model.configFile === undefined
      ? `\`${CONFIG_FILE}\`: written with no settings, as the model had none (Kiln's defaults apply).`
      : `\`${CONFIG_FILE}\`: converted from \`${model.configFile}\`. Kept: ${kept}. Dropped: ${result.config.dropped.length} (under Warnings, and as a comment at the top of the file). The original is \`${TORCHSERVE_DIR}/${model.configFile}\`.`,
  );
  if (handler.kind === 'builtin') {
    done(
      `Handler: TorchServe's built-in \`${handler.torchServe}\` is served by Kiln's built-in \`${handler.kiln}\` (\`--handler ${handler.kiln}\`), so there is no handler code. Its settings go under \`handler:\` in \`${CONFIG_FILE}\`; see docs/reference/built-in-handlers.md in Kiln.`,
    );
  } else {
    const found = PYTHON_METHODS.filter((m) => handler.python.methods[m] !== undefined);
    done(
      handler.python.file === undefined
        ? `Handler: Kiln has no built-in like TorchServe's \`${handler.builtin}\`, so \`${HANDLER_FILE}\` is a TypeScript skeleton to fill in.`
        : `Handler: \`${handler.python.file}\` is kept for reference, and \`${HANDLER_FILE}\` is a TypeScript skeleton in its place. Methods found: ${found.map((m) => `\`${m}\` (line ${handler.python.methods[m]})`).join(', ') || 'none'}.`,
    );
  }
  const weights = model.serializedFile;
  if (weights === undefined) done('Weights: the model has none (no `--serialized-file`), so the archive has no ONNX model either.');
  else if (weights.endsWith('.onnx')) done(`Weights: \`${weights}\` is ONNX already, copied as \`${basename(weights)}\`.`);
  else
    done(
      `Weights: \`${weights}\` is kept as \`${TORCHSERVE_DIR}/${weights}\`; Kiln needs it exported to ONNX as \`${onnxName(weights)}\` (below).`,
    );
  if (result.extraFiles.length > 0) {
    done(
      `Extra files: ${result.extraFiles.map((f) => `\`${f}\``).join(', ')}, copied under \`${EXTRA_DIR}/\`. \`--extra-files ${EXTRA_DIR}\` puts them back at the archive root, where the handler finds them in \`context.modelDir\`.`,
    );
  }
  done(`\`${TORCHSERVE_DIR}/\` keeps the Python, the original config and manifest for reference. Nothing in it is archived.`);

  lines.push('', '## Warnings', '');
  if (result.warnings.length === 0) lines.push('None.');
  for (const warning of result.warnings) lines.push(`- ${warning}`);

  lines.push('', '## Next steps', '', 'Run these in this folder.');
  let step = 1;
  const section = (title: string) => lines.push('', `### ${step++}. ${title}`, '');
  if (weights !== undefined && !weights.endsWith('.onnx')) {
    section('Export the weights to ONNX');
    if (EXPORTABLE.test(weights)) {
      lines.push(
        '```sh',
        `python ${EXPORT_SCRIPT}`,
        '```',
        '',
        `\`${EXPORT_SCRIPT}\` loads the weights as TorchServe's BaseHandler did and calls \`torch.onnx.export\` with a dynamic batch dimension, so Kiln can batch requests. ` +
          (model.modelFile === undefined
            ? 'Without a `--model-file`, TorchServe loaded them as TorchScript (`torch.jit.load`). If they are a state dict instead, the export needs the model class: import it, build it, `load_state_dict(torch.load(...))`.'
            : `They are an eager state dict, so it builds the model class from \`${TORCHSERVE_DIR}/${model.modelFile}\` first: check the class and its arguments.`) +
          ' If the handler loaded the model itself, export the model object it built instead. Check the example input (its shape and dtype) before running it.',
      );
    } else {
      lines.push(
        `Kiln cannot load \`${weights}\`. Export the model from PyTorch with \`torch.onnx.export\`, with a dynamic batch dimension, as \`${onnxName(weights)}\`.`,
      );
    }
  }
  if (handler.kind === 'skeleton') {
    section('Port the handler');
    lines.push(
      `\`${HANDLER_FILE}\` runs as it is: it reads tensors from a JSON body \`{"inputs": ...}\` and answers each output's values. Each hook names the Python method it stands for. TorchServe's \`handle\` took a list of requests; Kiln calls \`preprocess\` and \`postprocess\` once per request and \`inference\` once per batch. \`npm install\` brings the SDK's types; the SDK is described in docs/reference/handler-sdk.md of Kiln.`,
    );
  }
  section('Archive');
  lines.push(
    '```sh',
    result.archive,
    '```',
    '',
    `This writes \`${EXPORT_PATH}/${model.modelName}.mar\` (\`npm run archive\` runs the same command).`,
  );
  section('Serve');
  lines.push(
    '```sh',
    result.next[result.next.length - 1]!,
    '```',
    '',
    'The TorchServe APIs keep their ports (8080, 8081, 8082) and routes.',
    '',
  );
  return lines.join('\n');
}
