// `npm run install:gpu [-- --from <nupkg>]`: installs onnxruntime-node's CUDA and TensorRT providers
// with `kiln doctor --install cuda` (docs/guides/gpu.md). npm runs scripts from the repository root,
// so kiln runs in the folder npm was started from (INIT_CWD), where a relative --from was typed.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
if (!existsSync(join(root, 'packages/cli/dist/main.js'))) {
  console.error('kiln is not built: run `npm run build` first (`npm ci` builds it too)');
  process.exit(1);
}
const kiln = join(root, 'packages/cli/bin/kiln.js');
const run = spawnSync(process.execPath, [kiln, 'doctor', '--install', 'cuda', ...process.argv.slice(2)], {
  cwd: process.env.INIT_CWD ?? process.cwd(),
  stdio: 'inherit',
});
process.exit(run.status ?? 1);
