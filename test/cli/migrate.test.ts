import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, test } from 'vitest';
import { parseModelConfig } from '@kiln/handler-sdk/runtime';
import { filesUnder } from '../support/hygiene.js';
import { REPO_ROOT, kiln, tempDir } from '../support/kiln.js';
import { ElemType, linearExpected, linearModel, writeModel, type ModelSpec } from '../support/onnx-models.js';
import { rawZip } from '../support/raw-zip.js';
import { post, startKiln } from '../support/server.js';

// `kiln migrate`: TorchServe models (a .mar as torch-model-archiver writes it, or its input folder)
// become Kiln projects that archive and serve; and the server, given a TorchServe .mar, names it.

const PYTHON_HANDLER = `import json

import torch
from ts.torch_handler.base_handler import BaseHandler


class LinearHandler(BaseHandler):
    """y = xW + b, for rows of four numbers."""

    def initialize(self, context):
        super().initialize(context)
        self.topk = context.model_yaml_config["handler"]["topk"]

    def preprocess(self, data):
        rows = [row.get("data") or row.get("body") for row in data]
        return torch.tensor([json.loads(r)["row"] for r in rows])

    def postprocess(self, data):
        return data.tolist()
`;

/** Keys Kiln has (one written in TorchServe's upper case) and keys it lacks. */
const TORCHSERVE_CONFIG = `# TorchServe settings for the linear model
minWorkers: 1
maxWorkers: 2
batchSize: 4
maxBatchDelay: 20 # ms
responseTimeout: 30
deviceType: CPU
parallelType: pp
parallelLevel: 2
torchrun:
  nproc-per-node: 2
pt2:
  compile:
    enable: true
useVenv: true
handler:
  topk: 2 # read by initialize
`;
const DROPPED = ['parallelType', 'parallelLevel', 'torchrun', 'pt2', 'useVenv'];

/** The files given to torch-model-archiver: the weights (exported to ONNX already), a .py handler, a config and extras. */
function torchServeFolder(dir: string): string {
  mkdirSync(join(dir, 'assets'), { recursive: true });
  writeModel(dir, 'linear.onnx', linearModel());
  writeFileSync(join(dir, 'linear_handler.py'), PYTHON_HANDLER);
  writeFileSync(join(dir, 'utils.py'), 'def clamp(x):\n    return x\n');
  writeFileSync(join(dir, 'model-config.yaml'), TORCHSERVE_CONFIG);
  writeFileSync(join(dir, 'requirements.txt'), 'torch\n');
  writeFileSync(join(dir, 'index_to_name.json'), JSON.stringify({ 0: 'a', 1: 'b', 2: 'c' }));
  writeFileSync(join(dir, 'assets/vocab.txt'), 'alpha\nbeta\n');
  return dir;
}

/**
 * The .mar `torch-model-archiver --model-name linear -v 1.0 --serialized-file linear.onnx --handler
 * linear_handler.py --extra-files index_to_name.json,utils.py,<a folder holding assets/>
 * -r requirements.txt -c model-config.yaml` writes: a deflated zip, files flat at the root (a folder's
 * contents keep their paths below it) and MAR-INF/MANIFEST.json.
 */
function torchServeMar(source: string, path: string): string {
  const manifest = {
    createdOn: '29/11/2026 04:46:47',
    runtime: 'python',
    model: {
      modelName: 'linear',
      serializedFile: 'linear.onnx',
      handler: 'linear_handler.py',
      modelVersion: '1.0',
      requirementsFile: 'requirements.txt',
      configFile: 'model-config.yaml',
    },
    archiverVersion: '0.12.0',
  };
  const files = [
    'linear.onnx',
    'linear_handler.py',
    'utils.py',
    'model-config.yaml',
    'requirements.txt',
    'index_to_name.json',
    'assets/vocab.txt',
  ];
  writeFileSync(
    path,
    rawZip([
      ...files.map((name) => ({ name, data: readFileSync(join(source, name)), deflate: true })),
      { name: 'MAR-INF/MANIFEST.json', data: Buffer.from(JSON.stringify(manifest, null, 2)), deflate: true },
    ]),
  );
  return path;
}

/** Runs a `kiln ...` command line (plain words, as migrate writes them) with the repository's binary. */
function runCommand(cwd: string, command: string) {
  const [bin, ...args] = command.split(' ');
  expect(bin).toBe('kiln');
  return kiln(args, { cwd });
}

const lineOf = (source: string, text: string) => source.split('\n').findIndex((line) => line.includes(text)) + 1;

describe('kiln migrate: a .mar with a Python handler', () => {
  test('writes a project with the config converted, the extras, a TypeScript skeleton and MIGRATION.md; it archives and serves', async () => {
    const dir = tempDir();
    const mar = torchServeMar(torchServeFolder(join(dir, 'ts')), join(dir, 'linear.mar'));
    const run = kiln(['migrate', 'linear.mar', '--out', 'project'], { cwd: dir });
    expect(run.status).toBe(0);
    const project = join(dir, 'project');
    const archive =
      'kiln archive --model-name linear -v 1.0 --serialized-file linear.onnx --handler src/handler.ts -c model-config.yaml --extra-files extra --export-path model-store -f';

    // stdout: what was written and the next commands; stderr: one warning line per dropped key, and the rest.
    expect(run.stdout).toContain('migrated TorchServe model linear 1.0 to project/');
    for (const file of ['MIGRATION.md', 'model-config.yaml', 'src/handler.ts', 'extra/', 'torchserve/'])
      expect(run.stdout).toContain(`  ${file}\n`);
    expect(run.stdout).toContain(`  cd project\n  ${archive}\n  kiln serve --models linear=model-store/linear.mar\n`);
    const warnings = run.stderr.trim().split('\n');
    expect(warnings.every((line) => line.startsWith('warning: '))).toBe(true);
    for (const key of DROPPED)
      expect(warnings.filter((line) => line.startsWith(`warning: model-config.yaml: dropped ${key}: `))).toHaveLength(1);
    expect(run.stderr).toContain("parallelType: model parallelism across GPUs (pp, pptp, custom) is PyTorch's");
    expect(run.stderr).toContain('warning: requirements.txt lists Python packages');
    expect(run.stderr).toContain('warning: utils.py is Python: kept in torchserve/');

    // The files: the ONNX weights at the root, extras under extra/ at their archive paths, Python in torchserve/.
    expect(filesUnder(project)).toEqual([
      'MIGRATION.md',
      'extra',
      'extra/assets',
      'extra/assets/vocab.txt',
      'extra/index_to_name.json',
      'linear.onnx',
      'model-config.yaml',
      'package.json',
      'src',
      'src/handler.ts',
      'torchserve',
      'torchserve/MAR-INF',
      'torchserve/MAR-INF/MANIFEST.json',
      'torchserve/linear_handler.py',
      'torchserve/model-config.yaml',
      'torchserve/requirements.txt',
      'torchserve/utils.py',
      'tsconfig.json',
    ]);
    expect(readFileSync(join(project, 'extra/assets/vocab.txt'), 'utf8')).toBe('alpha\nbeta\n');
    expect(readFileSync(join(project, 'linear.onnx'))).toEqual(readFileSync(join(dir, 'ts/linear.onnx')));
    expect(readFileSync(join(project, 'torchserve/linear_handler.py'), 'utf8')).toBe(PYTHON_HANDLER);

    // model-config.yaml: Kiln's loader takes it; the values are TorchServe's; each dropped key is a comment at the top.
    const config = readFileSync(join(project, 'model-config.yaml'), 'utf8');
    expect(parseModelConfig(config)).toEqual({
      minWorkers: 1,
      maxWorkers: 2,
      batchSize: 4,
      maxBatchDelay: 20,
      responseTimeout: 30,
      deviceType: 'cpu',
      handler: { topk: 2 },
    });
    const header = config.slice(0, config.indexOf('\nminWorkers'));
    for (const key of DROPPED) expect(header).toMatch(new RegExp(`^# +${key}: \\S`, 'm'));
    expect(config).toContain('  topk: 2 # read by initialize');

    // The skeleton points at each Python method found, by line, and compiles against the SDK.
    const skeleton = readFileSync(join(project, 'src/handler.ts'), 'utf8');
    expect(skeleton).toContain('export default class LinearHandler extends BaseHandler<unknown, Answer, Config>');
    for (const method of ['initialize', 'preprocess', 'postprocess']) {
      expect(skeleton).toContain(`// Python: ${method}(self, `);
      expect(skeleton).toContain(`torchserve/linear_handler.py:${lineOf(PYTHON_HANDLER, `def ${method}(`)}.`);
    }
    expect(skeleton).toContain('// Python: inference(self, data), not defined in torchserve/linear_handler.py.');
    symlinkSync(join(REPO_ROOT, 'node_modules'), join(project, 'node_modules'));
    const tsc = spawnSync(process.execPath, [join(REPO_ROOT, 'node_modules/typescript/bin/tsc'), '-p', project], { encoding: 'utf8' });
    expect(tsc.stdout + tsc.stderr).toBe('');

    // MIGRATION.md: what was done, every warning, and the commands (no export: the weights are ONNX already).
    const doc = readFileSync(join(project, 'MIGRATION.md'), 'utf8');
    for (const warning of warnings) expect(doc).toContain(`- ${warning.slice('warning: '.length)}`);
    expect(doc).toContain(`\`\`\`sh\n${archive}\n\`\`\``);
    expect(doc).toContain('Methods found: `initialize` (line 10), `preprocess` (line 14), `postprocess` (line 18).');
    expect(doc).not.toContain('torch.onnx.export');
    expect(JSON.parse(readFileSync(join(project, 'package.json'), 'utf8')).scripts.archive).toBe(archive);

    // Archive the project, then serve it beside the original .mar, which fails naming the same commands.
    const archived = runCommand(project, archive);
    expect(archived.stderr).not.toContain('error');
    expect(archived.status).toBe(0);
    const server = await startKiln(['--models', `linear=${join(project, 'model-store/linear.mar')}`, `torchserve=${mar}`]);
    const output = server.output();
    expect(output).toMatch(/model torchserve failed to load[^\n]*KILN_ERR_MANIFEST_INVALID[^\n]*is a TorchServe archive/);
    expect(output).toContain(`kiln migrate ${mar} --out linear-kiln`);
    expect(output).toContain(archive);

    const rows = [
      [1, 2, 3, 4],
      [0, -1, 0.5, 2],
    ];
    const answer = await post(`${server.inference}/predictions/linear`, { inputs: { x: { data: rows } } });
    expect(answer.status).toBe(200);
    expect(answer.json).toEqual({ y: rows.flatMap((row) => linearExpected(row).map(Math.fround)) });
  });

  test('kiln inspect and kiln predict on the TorchServe .mar keep the manifest code and name kiln migrate', () => {
    const dir = tempDir();
    torchServeMar(torchServeFolder(join(dir, 'ts')), join(dir, 'linear.mar'));
    for (const args of [
      ['inspect', 'linear.mar'],
      ['predict', 'linear.mar', 'ts/index_to_name.json'],
    ]) {
      const run = kiln(args, { cwd: dir });
      expect(run.status).toBe(1);
      expect(run.stderr).toContain(`error KILN_ERR_MANIFEST_INVALID: ${join(dir, 'linear.mar')} is a TorchServe archive, not a Kiln one`);
      expect(run.stderr).toContain(
        `\n  kiln migrate ${join(dir, 'linear.mar')} --out linear-kiln\n  cd linear-kiln\n  kiln archive --model-name linear`,
      );
    }
  });

  test('refuses a --out that has files unless --force is given', () => {
    const dir = tempDir();
    torchServeMar(torchServeFolder(join(dir, 'ts')), join(dir, 'linear.mar'));
    mkdirSync(join(dir, 'taken'));
    writeFileSync(join(dir, 'taken/notes.txt'), 'mine');
    const refused = kiln(['migrate', 'linear.mar', '--out', 'taken'], { cwd: dir });
    expect(refused.status).toBe(1);
    expect(refused.stderr).toBe(
      'error KILN_ERR_OUTPUT_EXISTS: taken already has files; pass --force (-f) to write into it, or choose another --out\n',
    );
    expect(existsSync(join(dir, 'taken/model-config.yaml'))).toBe(false);

    const forced = kiln(['migrate', 'linear.mar', '--out', 'taken', '--force'], { cwd: dir });
    expect(forced.status).toBe(0);
    expect(readFileSync(join(dir, 'taken/notes.txt'), 'utf8')).toBe('mine');
    expect(existsSync(join(dir, 'taken/src/handler.ts'))).toBe(true);

    // Without --out, the project is <model-name>-kiln.
    expect(kiln(['migrate', 'linear.mar'], { cwd: dir }).status).toBe(0);
    expect(existsSync(join(dir, 'linear-kiln/MIGRATION.md'))).toBe(true);
  });
});

/** Logits = the mean of each channel after ImageNet normalisation: GlobalAveragePool then Flatten, 3 classes. */
const colourModel: ModelSpec = {
  inputs: [{ name: 'image', elemType: ElemType.FLOAT, dims: ['batch', 3, 224, 224] }],
  outputs: [{ name: 'logits', elemType: ElemType.FLOAT, dims: ['batch', 3] }],
  nodes: [
    { opType: 'GlobalAveragePool', inputs: ['image'], outputs: ['pooled'] },
    { opType: 'Flatten', inputs: ['pooled'], outputs: ['logits'] },
  ],
};

describe('kiln migrate: TorchServe built-in handlers', () => {
  test("an image_classifier model folder becomes Kiln's image_classifier built-in, and serves", async () => {
    const dir = tempDir();
    const folder = join(dir, 'colours');
    mkdirSync(folder);
    writeModel(folder, 'colours.onnx', colourModel);
    writeFileSync(join(folder, 'index_to_name.json'), JSON.stringify({ 0: 'red', 1: 'green', 2: 'blue' }));
    writeFileSync(join(folder, 'model-config.yaml'), 'batchSize: 2\nmaxBatchDelay: 5\nhandler:\n  topk: 2\n');
    const run = kiln(['migrate', 'colours', '--handler', 'ts.torch_handler.image_classifier', '--version', '2.0'], { cwd: dir });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const project = join(dir, 'colours-kiln');
    expect(run.stdout).toContain(
      "migrated TorchServe model colours 2.0 to colours-kiln/ (handler: Kiln's built-in image_classifier handler; 0 warnings)",
    );
    // No handler code: the archive names the built-in.
    expect(filesUnder(project)).toEqual([
      'MIGRATION.md',
      'colours.onnx',
      'extra',
      'extra/index_to_name.json',
      'model-config.yaml',
      'package.json',
      'torchserve',
      'torchserve/model-config.yaml',
    ]);
    const archive =
      'kiln archive --model-name colours -v 2.0 --serialized-file colours.onnx --handler image_classifier -c model-config.yaml --extra-files extra --export-path model-store -f';
    const doc = readFileSync(join(project, 'MIGRATION.md'), 'utf8');
    expect(doc).toContain("Handler: TorchServe's built-in `image_classifier` is served by Kiln's built-in `image_classifier`");
    expect(doc).toContain(`\`\`\`sh\n${archive}\n\`\`\``);
    expect(runCommand(project, archive).status).toBe(0);

    const server = await startKiln(['--models', `colours=${join(project, 'model-store/colours.mar')}`]);
    const image = await sharp({ create: { width: 300, height: 260, channels: 3, background: { r: 255, g: 0, b: 0 } } })
      .png()
      .toBuffer();
    const answer = await post(`${server.inference}/predictions/colours`, image, { 'content-type': 'image/png' });
    expect(answer.status).toBe(200);
    // By hand: a solid image stays solid through resize and crop, so each logit is the
    // ImageNet-normalised channel value; the answer is softmax over the three, top 2 by name.
    const logits = [(1 - 0.485) / 0.229, (0 - 0.456) / 0.224, (0 - 0.406) / 0.225];
    const sum = logits.reduce((s, x) => s + Math.exp(x), 0);
    expect(Object.keys(answer.json)).toEqual(['red', 'blue']);
    expect(answer.json.red).toBeCloseTo(Math.exp(logits[0]!) / sum, 4);
    expect(answer.json.blue).toBeCloseTo(Math.exp(logits[2]!) / sum, 4);
  });

  test('PyTorch weights: an export script with torch.jit.load, or with the model class of --model-file', () => {
    const dir = tempDir();
    const mar = (name: string, model: Record<string, string>, files: Record<string, string>) =>
      writeFileSync(
        join(dir, `${name}.mar`),
        rawZip([
          ...Object.entries(files).map(([file, text]) => ({ name: file, data: Buffer.from(text), deflate: true })),
          {
            name: 'MAR-INF/MANIFEST.json',
            data: Buffer.from(JSON.stringify({ runtime: 'python', model: { modelName: name, modelVersion: '1.0', ...model } })),
          },
        ]),
      );
    mar('scripted', { serializedFile: 'resnet.pt', handler: 'image_classifier' }, { 'resnet.pt': 'torchscript bytes' });
    mar(
      'eager',
      { serializedFile: 'weights.pth', handler: 'object_detector', modelFile: 'model.py' },
      { 'weights.pth': 'state dict bytes', 'model.py': 'import torch\n\n\nclass Detector(torch.nn.Module):\n    pass\n' },
    );

    expect(kiln(['migrate', 'scripted.mar'], { cwd: dir }).status).toBe(0);
    const scripted = readFileSync(join(dir, 'scripted-kiln/torchserve/export_onnx.py'), 'utf8');
    expect(scripted).toContain('model = torch.jit.load("torchserve/resnet.pt", map_location="cpu")');
    expect(scripted).toContain('torch.onnx.export(');
    expect(scripted).toContain('dynamic_axes={"input": {0: "batch"}, "scores": {0: "batch"}},');
    expect(scripted).toContain('"resnet.onnx"');
    const doc = readFileSync(join(dir, 'scripted-kiln/MIGRATION.md'), 'utf8');
    expect(doc).toContain('```sh\npython torchserve/export_onnx.py\n```');
    expect(doc).toContain('--serialized-file resnet.onnx --handler image_classifier');
    expect(doc.indexOf('python torchserve/export_onnx.py')).toBeLessThan(doc.indexOf('kiln archive'));

    expect(kiln(['migrate', 'eager.mar'], { cwd: dir }).status).toBe(0);
    const eager = readFileSync(join(dir, 'eager-kiln/torchserve/export_onnx.py'), 'utf8');
    expect(eager).toContain('from model import Detector');
    expect(eager).toContain('model.load_state_dict(torch.load("torchserve/weights.pth", map_location="cpu"))');
    expect(eager).toContain('output_names=["boxes", "labels", "scores"]');
    expect(readFileSync(join(dir, 'eager-kiln/MIGRATION.md'), 'utf8')).toContain(
      'They are an eager state dict, so it builds the model class',
    );
  });
});

describe('kiln migrate errors', () => {
  test('a folder whose handler cannot be told, a Kiln archive, a file that is not an archive, a missing path', () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'bare'));
    writeModel(join(dir, 'bare'), 'm.onnx', linearModel());
    const bare = kiln(['migrate', 'bare'], { cwd: dir });
    expect(bare.status).toBe(2);
    expect(bare.stderr).toContain('error KILN_ERR_USAGE: cannot tell the handler: the model has no MAR-INF/MANIFEST.json');
    expect(bare.stderr).toContain('pass --handler FILE.py, or a built-in name such as --handler image_classifier');

    writeFileSync(join(dir, 'model-config.yaml'), 'batchSize: 1\n');
    expect(
      kiln(
        ['archive', '--model-name', 'm', '-v', '1', '--serialized-file', 'bare/m.onnx', '--handler', 'tensor', '-c', 'model-config.yaml'],
        { cwd: dir },
      ).status,
    ).toBe(0);
    const native = kiln(['migrate', 'm.mar'], { cwd: dir });
    expect(native.status).toBe(2);
    expect(native.stderr).toContain(
      `error KILN_ERR_USAGE: ${join(dir, 'm.mar')} is already a Kiln archive (its MAR-INF/MANIFEST.json has Kiln's runtime "node", sdkVersion or files); serve it as it is`,
    );

    writeFileSync(join(dir, 'notes.mar'), 'not a zip');
    const notZip = kiln(['migrate', 'notes.mar'], { cwd: dir });
    expect(notZip.status).toBe(1);
    expect(notZip.stderr).toContain(`error KILN_ERR_ARCHIVE_UNREADABLE: ${join(dir, 'notes.mar')} is neither a TorchServe .mar (a zip)`);

    const missing = kiln(['migrate', 'nope.mar'], { cwd: dir });
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain('error KILN_ERR_FILE_NOT_FOUND: nope.mar: no such file or folder');
  });
});
