import { existsSync, readdirSync, statSync } from 'node:fs';
import { cp, readdir, readFile, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cliError } from '../../errors.js';
import { CLI_VERSION } from '../../version.js';

/**
 * The templates: inside the installed package (`npm run pack` copies them there), or else
 * templates/ at the repository root, beside packages/, when the CLI runs from a checkout.
 */
export const TEMPLATES_ROOT = [
  fileURLToPath(new URL('../../../templates/', import.meta.url)),
  fileURLToPath(new URL('../../../../../templates/', import.meta.url)),
].find((dir) => existsSync(dir))!;

/** The packages a project depends on, and where it takes them from. */
const KILN_PACKAGES = ['@kiln/handler-sdk', '@kiln/server', '@kiln/cli'] as const;

/**
 * What a generated project's .npmrc says. npm never packs a .npmrc, so it is written here, not
 * kept in the templates.
 */
const NPMRC = `# onnxruntime-node's install script downloads CUDA binaries from outside the npm registry.
# The bundled CPU binary (which also carries the WebGPU provider) works without them.
# For CUDA/TensorRT workers, install with ONNXRUNTIME_NODE_INSTALL=cuda12 set.
onnxruntime-node-install=skip
`;

const SKIPPED = new Set(['node_modules', 'model-store', 'dist', '.tmp']);
const PLACEHOLDER = /__PROJECT_NAME__/g;

export interface InitResult {
  dir: string;
  template: string;
  files: string[];
}

/**
 * Copies a template into a new folder and names the project after the folder. Its Kiln
 * dependencies are the published range (^ this CLI's version), or, with `sdk`, the tarballs of a
 * local build (`npm run pack`): a tarball of @kiln/handler-sdk with the others beside it, or the
 * folder that holds the three.
 */
export async function init(options: { dir: string; template: string; cwd: string; sdk?: string | undefined }): Promise<InitResult> {
  const local = options.sdk === undefined ? undefined : localPackages(resolve(options.cwd, options.sdk));
  const dir = resolve(options.cwd, options.dir);
  if (existsSync(dir) && (await readdir(dir)).length > 0) {
    throw cliError('KILN_ERR_INIT_TARGET_NOT_EMPTY', `${relative(options.cwd, dir) || dir} already has files; choose a new folder name`, {
      details: { path: dir },
    });
  }
  const source = join(TEMPLATES_ROOT, options.template);
  await cp(source, dir, { recursive: true, filter: (path) => !SKIPPED.has(basename(path)) });
  const name = packageName(basename(dir));
  for (const file of ['package.json', 'README.md']) {
    const path = join(dir, file);
    if (existsSync(path)) await writeFile(path, (await readFile(path, 'utf8')).replace(PLACEHOLDER, name));
  }
  await pinKilnPackages(join(dir, 'package.json'), local);
  await writeFile(join(dir, '.npmrc'), NPMRC);
  return { dir, template: options.template, files: await list(dir, '') };
}

/**
 * Points the project's @kiln/* dependencies at `local` tarballs (`file:` specs), or at the
 * published range of this CLI's version. @kiln/server, which the CLI needs, is listed beside
 * it when local, so that npm takes it from the tarball too rather than looking for it in the registry.
 */
async function pinKilnPackages(path: string, local: Record<(typeof KILN_PACKAGES)[number], string> | undefined): Promise<void> {
  const pkg = JSON.parse(await readFile(path, 'utf8')) as {
    dependencies?: Record<string, string>;
    devDependencies?: Record<string, string>;
  };
  const spec = (name: (typeof KILN_PACKAGES)[number]) => (local === undefined ? `^${CLI_VERSION}` : `file:${local[name]}`);
  pkg.dependencies = { ...pkg.dependencies, '@kiln/handler-sdk': spec('@kiln/handler-sdk') };
  const dev: Record<string, string> = { ...pkg.devDependencies, '@kiln/cli': spec('@kiln/cli') };
  if (local !== undefined) dev['@kiln/server'] = spec('@kiln/server');
  pkg.devDependencies = Object.fromEntries(Object.entries(dev).sort(([a], [b]) => a.localeCompare(b)));
  await writeFile(path, `${JSON.stringify(pkg, null, 2)}\n`);
}

/** The three tarballs `npm run pack` writes, found from one of them or from their folder. */
function localPackages(given: string): Record<(typeof KILN_PACKAGES)[number], string> {
  if (!existsSync(given)) throw cliError('KILN_ERR_FILE_NOT_FOUND', `--sdk ${given}: no such file or folder`, { details: { path: given } });
  const dir = statSync(given).isDirectory() ? given : dirname(given);
  const files = readdirSync(dir);
  const found = {} as Record<(typeof KILN_PACKAGES)[number], string>;
  for (const name of KILN_PACKAGES) {
    // npm pack names @kiln/handler-sdk@0.1.0 kiln-handler-sdk-0.1.0.tgz.
    const prefix = `${name.slice(1).replace('/', '-')}-`;
    const tarball = files
      .filter((f) => f.startsWith(prefix) && f.endsWith('.tgz') && /^\d/.test(f.slice(prefix.length)))
      .sort()
      .at(-1);
    if (tarball === undefined) {
      throw cliError(
        'KILN_ERR_FILE_NOT_FOUND',
        `--sdk ${given}: no ${prefix}<version>.tgz in ${dir}; run npm run pack in a Kiln checkout and give its dist-packages folder`,
        { details: { path: dir } },
      );
    }
    found[name] = join(dir, tarball);
  }
  return found;
}

/** npm package names are lower case, without spaces or most punctuation. */
export function packageName(folder: string): string {
  return (
    folder
      .toLowerCase()
      .replace(/[^a-z0-9._-]+/g, '-')
      .replace(/^[._-]+/, '') || 'kiln-handler'
  );
}

async function list(root: string, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of (await readdir(join(root, prefix), { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
    const rel = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
    if (entry.isDirectory()) out.push(...(await list(root, rel)));
    else out.push(rel);
  }
  return out;
}
