import { existsSync } from 'node:fs';
import { cp, readdir, readFile, writeFile } from 'node:fs/promises';
import { basename, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cliError } from '../../errors.js';

/** templates/ at the repository root, beside packages/. */
export const TEMPLATES_ROOT = fileURLToPath(new URL('../../../../../templates/', import.meta.url));

const SKIPPED = new Set(['node_modules', 'model-store', 'dist', '.tmp']);
const PLACEHOLDER = /__PROJECT_NAME__/g;

export interface InitResult {
  dir: string;
  template: string;
  files: string[];
}

/** Copies a template into a new folder and names the project after the folder. */
export async function init(options: { dir: string; template: string; cwd: string }): Promise<InitResult> {
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
  return { dir, template: options.template, files: await list(dir, '') };
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
