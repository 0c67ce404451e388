// Writes the publishable tarballs of @kiln/handler-sdk, @kiln/server and @kiln/cli to
// dist-packages/, or to the folder given as the first argument (npm run pack builds first). The
// CLI's tarball carries the templates: it is packed from a staging copy of packages/cli with
// templates/ added, so the checkout itself is never changed.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = resolve(process.argv[2] ?? join(root, 'dist-packages'));
const SKIPPED = new Set(['node_modules', 'model-store', '.tmp', '.tsbuildinfo']);
const copy = (from, to) => cpSync(from, to, { recursive: true, filter: (path) => !SKIPPED.has(basename(path)) });

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const staging = mkdtempSync(join(tmpdir(), 'kiln-pack-'));
try {
  const cli = join(staging, 'cli');
  for (const entry of ['package.json', 'README.md', 'bin', 'dist']) copy(join(root, 'packages/cli', entry), join(cli, entry));
  copy(join(root, 'templates'), join(cli, 'templates'));
  const pack = (dir) =>
    execFileSync('npm', ['pack', dir, '--pack-destination', out, '--silent'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  pack(join(root, 'packages/handler-sdk'));
  pack(join(root, 'packages/server'));
  pack(cli);
} finally {
  rmSync(staging, { recursive: true, force: true });
}
for (const file of readdirSync(out).sort()) console.log(join(out, file));
