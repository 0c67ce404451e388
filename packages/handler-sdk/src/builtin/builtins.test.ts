import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, test } from 'vitest';
import { ImageClassifier, ImageSegmenter, ObjectDetector, TensorHandler } from '../index.js';
import { runHandler } from '../testing/index.js';
import { tempDir } from '../../../../test/support/kiln.js';
import { ElemType, linearExpected, linearModel, writeModel } from '../../../../test/support/onnx-models.js';

/** A solid-colour PNG. */
function png(width: number, height: number, rgb: [number, number, number]): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } })
    .png()
    .toBuffer();
}

describe('image_classifier', () => {
  // Logits = the mean of each normalised channel: GlobalAveragePool then Flatten, 3 classes.
  const classifier = () => ({
    inputs: [{ name: 'image', elemType: ElemType.FLOAT, dims: ['batch', 3, 224, 224] }],
    outputs: [{ name: 'logits', elemType: ElemType.FLOAT, dims: ['batch', 3] }],
    nodes: [
      { opType: 'GlobalAveragePool', inputs: ['image'], outputs: ['pooled'] },
      { opType: 'Flatten', inputs: ['pooled'], outputs: ['logits'] },
    ],
  });

  test('exact top-k probabilities and labels for a known image', async () => {
    const dir = tempDir();
    const model = writeModel(dir, 'colour.onnx', classifier());
    writeFileSync(join(dir, 'index_to_name.json'), JSON.stringify({ 0: ['n0', 'red'], 1: 'green', 2: 'blue' }));
    const image = await png(300, 260, [255, 0, 0]);

    const [result] = await runHandler(ImageClassifier, [image], { modelPath: model, config: { handler: { topk: 2 } } });

    // Independently: a solid image stays solid through resize and crop, so each logit is the
    // ImageNet-normalised channel value, and the answer is softmax over those three.
    const logits = [(1 - 0.485) / 0.229, (0 - 0.456) / 0.224, (0 - 0.406) / 0.225];
    const sum = logits.reduce((s, x) => s + Math.exp(x), 0);
    const p = logits.map((x) => Math.exp(x) / sum);
    expect(Object.keys(result!.json as object)).toEqual(['red', 'blue']);
    // Within float32 accumulation error of ONNX Runtime's average over 224×224 values.
    expect((result!.json as Record<string, number>).red).toBeCloseTo(p[0]!, 4);
    expect((result!.json as Record<string, number>).blue).toBeCloseTo(p[2]!, 4);
  });

  test('a body that is not an image fails that request with KILN_ERR_BAD_IMAGE; the others are answered', async () => {
    const dir = tempDir();
    const model = writeModel(dir, 'colour.onnx', classifier());
    const results = await runHandler(
      ImageClassifier,
      [await png(10, 10, [0, 0, 255]), Buffer.from('not an image'), await png(50, 40, [0, 255, 0])],
      {
        modelPath: model,
      },
    );
    expect(results.map((r) => r.ok)).toEqual([true, false, true]);
    expect(results[1]).toMatchObject({ status: 400, error: { code: 'KILN_ERR_BAD_IMAGE' } });
    // No label file: keys are class indices (a JSON object lists integer keys in ascending order).
    const best = (json: unknown) => Object.entries(json as Record<string, number>).sort((a, b) => b[1] - a[1])[0]![0];
    expect(best(results[0]!.json)).toBe('2');
    expect(best(results[2]!.json)).toBe('1');
  });
});

test('object_detector: boxes above the threshold, scaled to the original image', async () => {
  const dir = tempDir();
  // A 64×64 model that "detects" two fixed boxes; scores depend on the input so the graph uses it.
  const model = writeModel(dir, 'detector.onnx', {
    inputs: [{ name: 'image', elemType: ElemType.FLOAT, dims: [1, 3, 64, 64] }],
    outputs: [
      { name: 'boxes', elemType: ElemType.FLOAT, dims: [2, 4] },
      { name: 'labels', elemType: ElemType.INT64, dims: [2] },
      { name: 'scores', elemType: ElemType.FLOAT, dims: [2] },
    ],
    constants: [
      { name: 'box_values', dims: [2, 4], values: [8, 8, 32, 32, 0, 0, 10, 10] },
      { name: 'label_values', dims: [2], values: [1, 2], int64: true },
      { name: 'base_scores', dims: [2], values: [0.9, 0.3] },
      { name: 'zero', dims: [], values: [0] },
    ],
    nodes: [
      { opType: 'Identity', inputs: ['box_values'], outputs: ['boxes'] },
      { opType: 'Identity', inputs: ['label_values'], outputs: ['labels'] },
      { opType: 'ReduceMean', inputs: ['image'], outputs: ['mean'], attributes: { keepdims: 0 } },
      { opType: 'Mul', inputs: ['mean', 'zero'], outputs: ['nothing'] },
      { opType: 'Add', inputs: ['nothing', 'base_scores'], outputs: ['scores'] },
    ],
  });
  writeFileSync(join(dir, 'index_to_name.json'), JSON.stringify({ 1: 'cat', 2: 'dog' }));
  const results = await runHandler(ObjectDetector, [await png(128, 96, [10, 20, 30]), await png(64, 64, [0, 0, 0])], { modelPath: model });
  expect(results[0]!.json).toEqual([{ cat: [16, 12, 64, 48], score: Math.fround(0.9) }]);
  expect(results[1]!.json).toEqual([{ cat: [8, 8, 32, 32], score: Math.fround(0.9) }]);
});

test('image_segmenter: the argmax class of every pixel', async () => {
  const dir = tempDir();
  const model = writeModel(dir, 'segmenter.onnx', {
    inputs: [{ name: 'image', elemType: ElemType.FLOAT, dims: [1, 3, 4, 4] }],
    outputs: [{ name: 'scores', elemType: ElemType.FLOAT, dims: [1, 3, 4, 4] }],
    nodes: [{ opType: 'Identity', inputs: ['image'], outputs: ['scores'] }],
  });
  // Left half red, right half blue; the top-right pixel green. Scores are the raw channels.
  const pixels = Buffer.alloc(4 * 4 * 3);
  for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) pixels[(y * 4 + x) * 3 + (x < 2 ? 0 : 2)] = 200;
  pixels[(0 * 4 + 3) * 3 + 1] = 255;
  const image = await sharp(pixels, { raw: { width: 4, height: 4, channels: 3 } })
    .png()
    .toBuffer();
  const [result] = await runHandler(ImageSegmenter, [image], {
    modelPath: model,
    config: { handler: { mean: [0, 0, 0], std: [1, 1, 1] } },
  });
  expect(result!.json).toEqual([
    [0, 0, 2, 1],
    [0, 0, 2, 2],
    [0, 0, 2, 2],
    [0, 0, 2, 2],
  ]);
});

test('tensor: named tensors in, named tensors out, batched', async () => {
  const model = writeModel(tempDir(), 'linear.onnx', linearModel());
  const rows = [
    [1, 2, 3, 4],
    [4, 3, 2, 1],
  ];
  const results = await runHandler(
    TensorHandler,
    rows.map((row) => ({ json: { inputs: { x: { shape: [1, 4], data: row } } } })),
    { modelPath: model },
  );
  expect(results.map((r) => r.json)).toEqual(
    rows.map((row) => ({ outputs: [{ name: 'y', datatype: 'FP32', shape: [1, 3], data: linearExpected(row).map(Math.fround) }] })),
  );
});
