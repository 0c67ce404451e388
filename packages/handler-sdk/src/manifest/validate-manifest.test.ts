import { describe, expect, test } from 'vitest';
import { isKilnError } from '../errors/kiln-error.js';
import { isSafeArchivePath, parseManifest, validateManifest } from './validate-manifest.js';

const HASH = 'a'.repeat(64);

function manifest(overrides: Record<string, unknown> = {}) {
  return {
    createdOn: '29/11/2026 05:00:00',
    runtime: 'node',
    archiverVersion: '0.1.0',
    sdkVersion: '0.1.0',
    model: { modelName: 'm', modelVersion: '1.0', serializedFile: 'm.onnx', handler: 'handler.mjs' },
    signature: { inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 4] }], outputs: [{ name: 'y', datatype: 'FP32' }] },
    files: { 'm.onnx': { size: 10, sha256: HASH }, 'handler.mjs': { size: 5, sha256: HASH } },
    ...overrides,
  };
}

function problems(value: unknown): string[] {
  try {
    validateManifest(value);
  } catch (error) {
    if (isKilnError(error)) return error.details!.problems as string[];
    throw error;
  }
  throw new Error('expected the manifest to be refused');
}

describe('validateManifest', () => {
  test('accepts a complete manifest and freezes it', () => {
    const valid = validateManifest(manifest());
    expect(valid.model.modelName).toBe('m');
    expect(Object.isFrozen(valid.signature!.inputs[0])).toBe(true);
  });

  test('names each wrong field', () => {
    expect(problems(manifest({ runtime: 'python', createdOn: '2026-11-29' }))).toEqual([
      'createdOn: must match pattern "^\\d{2}/\\d{2}/\\d{4} \\d{2}:\\d{2}:\\d{2}$"',
      'runtime: must be "node"',
    ]);
    expect(problems(manifest({ signature: { inputs: [{ name: 'x', datatype: 'FLOAT' }], outputs: [] } }))).toEqual([
      expect.stringMatching(/^signature\.inputs\.0\.datatype: must be one of "BOOL"/),
    ]);
  });

  test('cross-checks files against the model fields', () => {
    expect(problems(manifest({ files: { 'handler.mjs': { size: 5, sha256: HASH } } }))).toEqual([
      'model.serializedFile: "m.onnx" is not in files',
    ]);
    expect(problems(manifest({ signature: undefined }))).toEqual(['signature: required when model.serializedFile is set']);
    expect(problems(manifest({ files: { ...manifest().files, '../escape': { size: 1, sha256: HASH } } }))).toEqual([
      'files: "../escape" is not a safe archive path',
    ]);
  });

  test('the handler is a built-in by name or a file the archive lists: never a path out of it', () => {
    const model = (handler: string) => ({ ...manifest().model, handler });
    expect(problems(manifest({ model: model('../../../../tmp/x.mjs') }))).toEqual([
      'model.handler: "../../../../tmp/x.mjs" is neither a built-in handler (image_classifier, object_detector, image_segmenter, tensor) nor a file in files',
    ]);
    expect(problems(manifest({ model: model('/tmp/x.mjs:Handler') }))).toEqual([
      'model.handler: "/tmp/x.mjs" is neither a built-in handler (image_classifier, object_detector, image_segmenter, tensor) nor a file in files',
    ]);
    expect(validateManifest(manifest({ model: model('tensor') })).model.handler).toBe('tensor');
    expect(validateManifest(manifest({ model: model('handler.mjs:MyHandler') })).model.handler).toBe('handler.mjs:MyHandler');
  });

  test('parseManifest refuses text that is not JSON', () => {
    expect(() => parseManifest('{nope', 'x.mar')).toThrow(/x\.mar is not JSON/);
  });
});

test.each([
  ['model.onnx', true],
  ['sub/dir/file.txt', true],
  ['', false],
  ['/etc/passwd', false],
  ['../up', false],
  ['a/../b', false],
  ['a//b', false],
  ['./a', false],
  ['a\\b', false],
  ['C:/x', false],
  ['nul\0byte', false],
])('isSafeArchivePath(%j) is %s', (path, safe) => {
  expect(isSafeArchivePath(path)).toBe(safe);
});
