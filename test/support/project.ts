import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { linearModel, writeModel } from './onnx-models.js';

export const HANDLER_SOURCE = `import type { Manifest } from '@kiln/handler-sdk';

export default class LinearHandler {
  describe(manifest: Manifest): string {
    return manifest.model.modelName;
  }
}
`;

export const CONFIG_SOURCE = `minWorkers: 1
batchSize: 8
maxBatchDelay: 20
handler:
  topk: 3
`;

/**
 * A folder laid out like a user's model project: the linear model (with its weights in an
 * external-data file when asked), a handler, a config and some extra files.
 */
export function makeProject(dir: string, options: { external?: boolean } = {}): string {
  writeModel(dir, 'linear.onnx', linearModel(options.external ? { external: 'linear.weights' } : {}));
  writeFileSync(join(dir, 'handler.ts'), HANDLER_SOURCE);
  writeFileSync(join(dir, 'model-config.yaml'), CONFIG_SOURCE);
  writeFileSync(join(dir, 'index_to_name.json'), JSON.stringify({ 0: 'a', 1: 'b', 2: 'c' }));
  mkdirSync(join(dir, 'assets/sub'), { recursive: true });
  writeFileSync(join(dir, 'assets/vocab.txt'), 'alpha\nbeta\n');
  writeFileSync(join(dir, 'assets/sub/notes.md'), '# notes\n');
  writeFileSync(join(dir, 'assets/.DS_Store'), 'junk');
  return dir;
}

export const PROJECT_ARGS = [
  '--model-name',
  'linear',
  '-v',
  '1.0',
  '--serialized-file',
  'linear.onnx',
  '--handler',
  'handler.ts',
  '-c',
  'model-config.yaml',
  '--extra-files',
  'index_to_name.json,assets',
  '--export-path',
  'out',
];
