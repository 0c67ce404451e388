import { join, resolve } from 'node:path';
import { BUNDLED_HANDLER_FILE, checkModelName, type Signature } from '@kiln/handler-sdk/runtime';
import type { CommandIO } from '../../command-spec.js';
import { cliError } from '../../errors.js';
import { entrySize, type ArchiveEntry, type WriteOptions } from '../../archive-writer/entry.js';
import { writeDir } from '../../archive-writer/write-dir.js';
import { writeTgz } from '../../archive-writer/write-tgz.js';
import { writeZip } from '../../archive-writer/write-zip.js';
import { buildManifest } from './build-manifest.js';
import { bundleHandler } from './bundle-handler.js';
import { collectConfig, collectExtraFiles, collectModel, orderEntries } from './collect-inputs.js';
import { AtomicOutput } from './output.js';
import { createProgress } from './progress.js';
import { resolveHandler } from './resolve-handler.js';
import type { ArchiveFormat } from './spec.js';

export interface ArchiveOptions {
  modelName: string;
  version: string;
  handler: string;
  serializedFile?: string | undefined;
  extraFiles?: string | undefined;
  configFile?: string | undefined;
  exportPath?: string | undefined;
  archiveFormat?: ArchiveFormat | undefined;
  description?: string | undefined;
  force?: boolean | undefined;
  quiet?: boolean | undefined;
}

export interface ArchiveResult {
  path: string;
  format: ArchiveFormat;
  files: { path: string; size: number }[];
  signature: Signature | undefined;
}

/** Builds a model archive. Throws a KilnError naming the flag or file on any problem; never exits. */
export async function archive(options: ArchiveOptions, io: CommandIO): Promise<ArchiveResult> {
  const { cwd } = io;
  const format = options.archiveFormat ?? 'default';
  checkNames(options);
  const createdAt = createdAtFromEnv(io.env);

  // Everything is read and checked before a byte is written.
  const entries: ArchiveEntry[] = [];
  let signature: Signature | undefined;
  let serializedFile: string | undefined;
  if (options.serializedFile !== undefined) {
    const model = collectModel(options.serializedFile, cwd);
    entries.push(...model.entries);
    ({ signature, serializedFile } = model);
  }
  const handler = resolveHandler(options.handler, cwd);
  let handlerEntry = handler.kind === 'builtin' ? handler.name : BUNDLED_HANDLER_FILE;
  if (handler.kind === 'file') {
    const bundle = await bundleHandler(handler.file, handler.exportName, cwd);
    if (handler.exportName !== undefined) handlerEntry += `:${handler.exportName}`;
    entries.push({ path: BUNDLED_HANDLER_FILE, origin: `--handler ${options.handler}`, source: { kind: 'bytes', bytes: bundle.code } });
  }
  let configFile: string | undefined;
  if (options.configFile !== undefined) {
    const config = collectConfig(options.configFile, cwd);
    configFile = config.path;
    entries.push(config);
  }
  if (options.extraFiles !== undefined) entries.push(...collectExtraFiles(options.extraFiles, cwd));
  const ordered = orderEntries(entries);

  const exportPath = resolve(cwd, options.exportPath ?? '.');
  const target = join(exportPath, outputName(options.modelName, format));
  const output = await AtomicOutput.open(exportPath, target, options.force === true, cwd);
  const progress = createProgress(
    io,
    ordered.reduce((n, e) => n + entrySize(e), 0),
    options.quiet !== true,
  );
  const write: WriteOptions = {
    mtime: createdAt,
    onBytes: (n) => progress.advance(n),
    manifest: (files) =>
      buildManifest(
        {
          createdAt,
          modelName: options.modelName,
          modelVersion: options.version,
          handler: handlerEntry,
          serializedFile,
          configFile,
          description: options.description,
          signature,
        },
        files,
      ),
  };
  try {
    if (format === 'tgz') await writeTgz(output.temp, ordered, { ...write, root: options.modelName });
    else if (format === 'no-archive') await writeDir(output.temp, ordered, write);
    else await writeZip(output.temp, ordered, { ...write, compress: format === 'default' });
    await output.commit();
  } catch (error) {
    await output.discard();
    throw error;
  } finally {
    progress.done();
  }
  return {
    path: target,
    format,
    files: ordered.map((e) => ({ path: e.path, size: entrySize(e) })),
    signature,
  };
}

export function outputName(modelName: string, format: ArchiveFormat): string {
  if (format === 'tgz') return `${modelName}.tar.gz`;
  if (format === 'no-archive') return modelName;
  return `${modelName}.mar`;
}

function checkNames(options: ArchiveOptions): void {
  checkModelName(options.modelName, '--model-name');
  if (options.version.trim() === '' || /[\s/\\]/.test(options.version)) {
    throw cliError('KILN_ERR_USAGE', `--version "${options.version}" is not allowed: give a version without spaces or slashes, e.g. 1.0`, {
      details: { flag: '--version', received: options.version },
    });
  }
}

/** SOURCE_DATE_EPOCH (seconds) pins every timestamp, for reproducible builds. */
function createdAtFromEnv(env: NodeJS.ProcessEnv): Date {
  const raw = env.SOURCE_DATE_EPOCH;
  if (raw === undefined || raw === '') return new Date(Math.floor(Date.now() / 1000) * 1000);
  if (!/^\d+$/.test(raw)) {
    throw cliError('KILN_ERR_USAGE', `SOURCE_DATE_EPOCH must be whole seconds since 1970, received "${raw}"`, {
      details: { env: 'SOURCE_DATE_EPOCH', received: raw },
    });
  }
  return new Date(Number(raw) * 1000);
}
