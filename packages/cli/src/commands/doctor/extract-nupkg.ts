import { createWriteStream } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { serverError } from '@kiln/handler-sdk/errors';
import { cliError } from '../../errors.js';
import { humanSize, statOrThrow } from '../../util/files.js';
import { CUDA_PROVIDER_LIBRARIES, GPU_PACKAGE, NUPKG_LIBRARY_FOLDER, type OnnxRuntimePackage } from './onnxruntime-package.js';

/*
 * `--install cuda --from <nupkg>`: what onnxruntime-node's install script does after its download,
 * done from a file. A .nupkg is a zip, read with the same walker as model archives (which refuses
 * links and paths that climb out). The package's .nuspec is checked first: provider libraries of
 * another version than the runtime do not load, or crash.
 */

const WANTED = new Map(CUDA_PROVIDER_LIBRARIES.map((name) => [`${NUPKG_LIBRARY_FOLDER}/${name}`, name]));
const NUSPEC_LIMIT_BYTES = 1024 * 1024;

export async function extractNupkg(
  nupkg: string,
  ort: OnnxRuntimePackage,
  options: { cwd: string; progress: (text: string) => void },
): Promise<void> {
  // A folder is an unpacked package, which the walker reads as it is.
  if (!statOrThrow(nupkg, '--from', options.cwd).isDirectory()) await refuseNonZip(nupkg, options.cwd);
  const { walkArchive } = await import('@kiln/server');
  const shown = relative(options.cwd, nupkg) || nupkg;

  // First pass: the central directory and the .nuspec only, so a wrong file costs no extraction.
  let nuspec: string | undefined;
  const present = new Set<string>();
  await walkArchive(nupkg, async (entry) => {
    if (WANTED.has(entry.path)) present.add(entry.path);
    if (entry.path.endsWith('.nuspec') && !entry.path.includes('/') && entry.size <= NUSPEC_LIMIT_BYTES) {
      nuspec = (await readAll(await entry.open())).toString('utf8');
    }
  });
  checkNuspec(shown, nuspec, ort);
  const absent = [...WANTED.keys()].filter((path) => !present.has(path));
  if (absent.length > 0) {
    throw cliError(
      'KILN_ERR_USAGE',
      `--from ${shown} has no ${absent.join(', ')}; pass the ${GPU_PACKAGE} package as nuget.org serves it`,
      {
        details: { path: nupkg, missing: absent },
      },
    );
  }

  // Second pass: each library to a temporary name beside its destination, renamed once all three are whole.
  await mkdir(ort.binDir, { recursive: true });
  const partial = (name: string) => join(ort.binDir, `.${name}.${process.pid}.partial`);
  try {
    await walkArchive(nupkg, async (entry) => {
      const name = WANTED.get(entry.path);
      if (name === undefined) return;
      options.progress(`extracting ${entry.path} (${humanSize(entry.size)}) to ${ort.binDir}\n`);
      await write(await entry.open(), partial(name));
    });
    for (const name of CUDA_PROVIDER_LIBRARIES) await rename(partial(name), join(ort.binDir, name));
  } finally {
    await Promise.all(CUDA_PROVIDER_LIBRARIES.map((name) => rm(partial(name), { force: true })));
  }
}

/** A .nupkg is a zip; say so plainly rather than in the model-archive reader's words. */
async function refuseNonZip(path: string, cwd: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    const head = Buffer.alloc(2);
    await handle.read(head, 0, 2, 0);
    if (head.toString('latin1') === 'PK') return;
  } finally {
    await handle.close();
  }
  throw cliError('KILN_ERR_USAGE', `--from ${relative(cwd, path) || path} is not a .nupkg: a .nupkg is a zip file, and this is not one`, {
    details: { path },
  });
}

/** The package must be GPU_PACKAGE at the version onnxruntime-node's install script asks for. */
function checkNuspec(shown: string, nuspec: string | undefined, ort: OnnxRuntimePackage): void {
  const id = nuspec === undefined ? undefined : /<id>\s*([^<]+?)\s*<\/id>/.exec(nuspec)?.[1];
  const version = nuspec === undefined ? undefined : /<version>\s*([^<]+?)\s*<\/version>/.exec(nuspec)?.[1];
  if (id === undefined || version === undefined) {
    throw cliError('KILN_ERR_USAGE', `--from ${shown} is not a NuGet package: it has no .nuspec naming its id and version`, {
      details: { path: shown },
    });
  }
  if (id.toLowerCase() !== GPU_PACKAGE.toLowerCase() || version !== ort.gpuPackageVersion) {
    throw cliError(
      'KILN_ERR_USAGE',
      `--from ${shown} is ${id} ${version}, but onnxruntime-node ${ort.version} needs ${GPU_PACKAGE} ${ort.gpuPackageVersion}: provider libraries of another version do not load`,
      { details: { path: shown, id, version, expected: ort.gpuPackageVersion } },
    );
  }
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks);
}

/** A failed write is this machine's problem (a read-only node_modules, a full disk), not the package's. */
async function write(stream: Readable, path: string): Promise<void> {
  try {
    await pipeline(stream, createWriteStream(path));
  } catch (error) {
    // fs errors name their system call; a damaged entry's do not, and the walker reports those.
    if ((error as NodeJS.ErrnoException).syscall === undefined) throw error;
    throw serverError('KILN_ERR_PROVIDER_UNAVAILABLE', `could not write ${path}: ${(error as Error).message}`, {
      cause: error,
      details: { path },
    });
  }
}
