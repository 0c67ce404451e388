import { describe, expect, test } from 'vitest';
import { readPythonHandler } from './handler-skeleton.js';
import { archiveCommand, torchServeBuiltin } from './layout.js';

describe('TorchServe names', () => {
  test("TorchServe's built-in handlers in each spelling", () => {
    for (const spelling of ['image_classifier', 'ts.torch_handler.image_classifier', 'ts.torch_handler.image_classifier:handle']) {
      expect(torchServeBuiltin(spelling)).toBe('image_classifier');
    }
    expect(torchServeBuiltin('my_handler.py')).toBeUndefined();
    expect(torchServeBuiltin('text_classifier')).toBe('text_classifier');
  });

  test('the Python methods found, by line, and the class', () => {
    const source =
      'import torch\n\nclass Mine(object):\n    def initialize(self, ctx):\n        pass\n\n    def handle(self, data, ctx):\n        return data\n';
    expect(readPythonHandler(source, 'torchserve/mine.py', undefined)).toEqual({
      file: 'torchserve/mine.py',
      className: 'Mine',
      methods: { initialize: 4, handle: 7 },
      entry: undefined,
    });
  });

  test('the archive command quotes a version the shell would split', () => {
    const command = archiveCommand({
      modelName: 'm',
      modelVersion: '1.0 beta',
      serializedFile: 'w.pt',
      handler: 'src/handler.ts',
      hasExtraFiles: false,
    });
    expect(command).toBe(
      "kiln archive --model-name m -v '1.0 beta' --serialized-file w.onnx --handler src/handler.ts -c model-config.yaml --export-path model-store -f",
    );
  });
});
