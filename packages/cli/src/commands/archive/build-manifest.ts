import { SDK_VERSION, validateManifest, type FileEntry, type Manifest, type Signature } from '@kiln/handler-sdk/runtime';
import { CLI_VERSION } from '../../version.js';

export interface ManifestInput {
  createdAt: Date;
  modelName: string;
  modelVersion: string;
  handler: string;
  serializedFile?: string | undefined;
  configFile?: string | undefined;
  description?: string | undefined;
  signature?: Signature | undefined;
}

/** TorchServe's `createdOn` format, `dd/mm/yyyy HH:MM:SS`, in UTC so builds do not depend on the zone. */
export function formatCreatedOn(date: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(date.getUTCDate())}/${p(date.getUTCMonth() + 1)}/${date.getUTCFullYear()} ${p(date.getUTCHours())}:${p(date.getUTCMinutes())}:${p(date.getUTCSeconds())}`;
}

/** The manifest as JSON bytes, validated against the same schema the server reads it with. */
export function buildManifest(input: ManifestInput, files: Record<string, FileEntry>): Buffer {
  const model: Manifest['model'] = {
    modelName: input.modelName,
    modelVersion: input.modelVersion,
    ...(input.serializedFile === undefined ? {} : { serializedFile: input.serializedFile }),
    handler: input.handler,
    ...(input.configFile === undefined ? {} : { configFile: input.configFile }),
    ...(input.description === undefined ? {} : { description: input.description }),
  };
  const sortedFiles: Record<string, FileEntry> = {};
  for (const path of Object.keys(files).sort()) sortedFiles[path] = files[path]!;
  const manifest: Manifest = {
    createdOn: formatCreatedOn(input.createdAt),
    runtime: 'node',
    archiverVersion: CLI_VERSION,
    sdkVersion: SDK_VERSION,
    model,
    ...(input.signature === undefined ? {} : { signature: input.signature }),
    files: sortedFiles,
  };
  validateManifest(structuredClone(manifest));
  return Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`);
}
