// Builds a committed revision of Kiln in a folder of its own, so that the benchmark can measure
// it while the working tree is half-way through a change ("before" numbers):
//
//   node bench/compare/build-ref.mjs [rev=HEAD] [dir=$TMPDIR/kiln-ref-<sha>]
//   KILN_BENCH_KILN_ROOT=<dir> KILN_BENCH_NO_ISOLATION_KEY=1 node bench/compare/run.mjs
//
// The copy comes from `git archive`, so uncommitted edits never leak into it. It shares this
// checkout's node_modules through links, except @kiln/*, which must point at the copy's own
// packages: Node resolves packages by their real path, so linking the whole node_modules folder
// would make the copy's CLI load this checkout's server.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const rev = process.argv[2] ?? 'HEAD';
const sha = execFileSync('git', ['rev-parse', '--short', rev], { cwd: root, encoding: 'utf8' }).trim();
const dir = process.argv[3] ?? join(tmpdir(), `kiln-ref-${sha}`);

rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
const tar = execFileSync('git', ['archive', '--format=tar', rev], { cwd: root, maxBuffer: 1 << 30 });
execFileSync('tar', ['-x', '-C', dir], { input: tar });
// The report names the build it measured from this file.
writeFileSync(join(dir, 'KILN_REF'), `${rev} = ${sha}\n`);

const modules = join(dir, 'node_modules');
mkdirSync(join(modules, '@kiln'), { recursive: true });
for (const name of readdirSync(join(root, 'node_modules'))) {
  if (name !== '@kiln') symlinkSync(join(root, 'node_modules', name), join(modules, name));
}
for (const name of readdirSync(join(dir, 'packages'))) {
  if (existsSync(join(dir, 'packages', name, 'package.json')))
    symlinkSync(join('..', '..', 'packages', name), join(modules, '@kiln', name));
}

execFileSync('npm', ['run', 'build'], { cwd: dir, stdio: 'inherit' });
console.log(`built ${rev} (${sha}) in ${dir}`);
console.log(`KILN_BENCH_KILN_ROOT=${dir} KILN_BENCH_NO_ISOLATION_KEY=1 node bench/compare/run.mjs`);
