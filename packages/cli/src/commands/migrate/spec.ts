import type { CommandSpec } from '../../command-spec.js';

export const migrateCommand: CommandSpec = {
  name: 'migrate',
  summary: 'Turn a TorchServe model (.mar or model folder) into a Kiln project',
  description:
    "Reads a TorchServe .mar (or .tar.gz), an unpacked one, or a folder of torch-model-archiver inputs, and writes a Kiln project: model-config.yaml converted (each TorchServe key Kiln lacks is dropped with a warning on stderr, also written as a comment at the top of the file), the extra files under extra/, and the handler. TorchServe's image_classifier, object_detector and image_segmenter become Kiln's built-ins of the same names; a .py handler becomes a TypeScript skeleton in src/handler.ts that runs as it is, with the Python kept in torchserve/ and a comment at each hook pointing at its Python method. MIGRATION.md lists what was done, every warning, the command that exports .pt/.pth weights to ONNX (torchserve/export_onnx.py) and the kiln archive command to run then; stdout lists the files and those commands. Without a manifest, the handler is the .py file that defines handle, preprocess, inference or postprocess, and the weights are the one .onnx, .pt, .pth or .bin file; the options below settle it where that is not clear. A --out that has files is refused (KILN_ERR_OUTPUT_EXISTS) unless --force is given.",
  arguments: [
    {
      name: '<model>',
      description: 'A TorchServe .mar or .tar.gz, or a folder: an unpacked .mar, or the files given to torch-model-archiver',
    },
  ],
  options: [
    {
      flags: '--out <dir>',
      description: "The project folder to write; it must not exist or be empty (default: the model's name followed by -kiln)",
    },
    { flags: '-f, --force', description: 'Write into a folder that already has files, replacing those of the same names' },
    { flags: '--model-name <name>', description: "The model's name (default: the manifest's, else the folder's name)" },
    { flags: '-v, --version <version>', description: "The model's version (default: the manifest's, else 1.0)" },
    {
      flags: '--handler <handler>',
      description:
        'The handler: a .py file inside the model, or a TorchServe built-in name (image_classifier, object_detector, image_segmenter)',
    },
    { flags: '--serialized-file <path>', description: 'The weights file inside the model (.onnx, .pt, .pth, ...)' },
  ],
  load: () => import('./cli.js'),
};
