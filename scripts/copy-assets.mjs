// Copies the files a build needs besides what tsc writes (the status page) into dist, beside the
// modules that read them.
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const ASSETS = ['packages/server/src/http/status-page.html'];

for (const asset of ASSETS) {
  const target = join(root, asset.replace('/src/', '/dist/'));
  mkdirSync(dirname(target), { recursive: true });
  copyFileSync(join(root, asset), target);
}
console.log(`copied ${ASSETS.length} asset(s)`);
