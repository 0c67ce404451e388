import type { CommandSpec } from '../../command-spec.js';

export const ARCHIVE_FORMATS = ['default', 'zip-store', 'tgz', 'no-archive'] as const;
export type ArchiveFormat = (typeof ARCHIVE_FORMATS)[number];

export const archiveCommand: CommandSpec = {
  name: 'archive',
  summary: 'Bundle an ONNX model, a handler and a config into a model archive (.mar)',
  description:
    "Flags and meanings follow torch-model-archiver. The handler is bundled with esbuild into one ESM file with its npm dependencies inlined (onnxruntime-node, sharp and @kiln/handler-sdk resolve to the server's copies). The manifest records the model's signature, read from the ONNX graph, and a sha256 for every file. With SOURCE_DATE_EPOCH set, the same inputs give byte-identical archives.",
  options: [
    {
      flags: '--model-name <name>',
      description: 'Model name; the archive is <name>.mar. Must match ^[A-Za-z0-9][A-Za-z0-9_\\-.]*$',
      required: true,
    },
    { flags: '-v, --version <version>', description: 'Model version, e.g. 1.0', required: true },
    {
      flags: '--serialized-file <path>',
      description: 'The ONNX model. Files its initializers name as external data are carried along at their relative paths',
    },
    {
      flags: '--handler <handler>',
      description:
        'A built-in handler (image_classifier, object_detector, image_segmenter, tensor) or a .ts/.js file, optionally file.ts:exportName',
      required: true,
    },
    { flags: '--extra-files <paths>', description: "Comma-separated files and folders; a folder's contents go to the archive root" },
    { flags: '-c, --config-file <path>', description: 'A model-config.yaml, validated before anything is written' },
    { flags: '--export-path <dir>', description: 'Where to write the archive; created if missing', default: '.' },
    {
      flags: '--archive-format <format>',
      description:
        'default (zip: deflate, but weights that deflate would shrink by less than a fifth are stored), zip-store (zip, no compression), tgz (<name>.tar.gz) or no-archive (a folder <name>/)',
      default: 'default',
      choices: ARCHIVE_FORMATS,
    },
    { flags: '--description <text>', description: 'A description stored in the manifest' },
    { flags: '-f, --force', description: 'Overwrite an existing archive' },
    { flags: '-q, --quiet', description: 'Print nothing but errors' },
  ],
  load: () => import('./cli.js'),
};
