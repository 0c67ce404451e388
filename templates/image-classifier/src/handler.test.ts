import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { decodeImage, type HandlerContext, type Tensors } from '@kiln/handler-sdk';
import { runHandler } from '@kiln/handler-sdk/testing';
import { describe, expect, it } from 'vitest';
import ImageClassifierHandler, { type ClassifierConfig } from './handler.js';

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));
const modelPath = here('../model.onnx');
const red = here('../example/red.png');
const blue = here('../example/blue.png');
const config = { handler: { topk: 3 } };

/** What the model computes, done by hand: softmax over the mean of each colour channel (0–1). */
async function expectedProbabilities(file: string): Promise<Record<string, number>> {
  const image = await decodeImage(await readFile(file));
  expect([image.width, image.height]).toEqual([32, 32]); // so resizing leaves the pixels as they are
  const sums = [0, 0, 0];
  for (let i = 0; i < image.data.length; i++) sums[i % 3]! += image.data[i]! / 255;
  const exps = sums.map((sum) => Math.exp(sum / (image.width * image.height)));
  const total = exps[0]! + exps[1]! + exps[2]!;
  return { red: exps[0]! / total, green: exps[1]! / total, blue: exps[2]! / total };
}

function expectClose(actual: unknown, expected: Record<string, number>): void {
  const answer = actual as Record<string, number>;
  expect(Object.keys(answer).sort()).toEqual(Object.keys(expected).sort());
  for (const [label, p] of Object.entries(expected)) expect(Math.abs(answer[label]! - p)).toBeLessThan(1e-5);
}

describe('ImageClassifierHandler', () => {
  it('answers red.png with red first and softmax of its channel means', async () => {
    const [result] = await runHandler(ImageClassifierHandler, [{ file: red }], { modelPath, config });
    expect(result).toMatchObject({ ok: true, status: 200 });
    expect(Object.keys(result!.json as object)).toEqual(['red', 'green', 'blue']);
    expectClose(result!.json, await expectedProbabilities(red));
  });

  it('runs a batch of both images in one inference and fails a non-image alone', async () => {
    const batches: number[][] = [];
    class Recording extends ImageClassifierHandler {
      override inference(batch: Tensors, context: HandlerContext<ClassifierConfig>): Promise<Tensors> {
        batches.push([...batch.image!.dims]);
        return super.inference(batch, context);
      }
    }
    const results = await runHandler(Recording, [{ file: red }, { file: blue }, { body: 'not an image', contentType: 'image/png' }], {
      modelPath,
      config,
    });
    expect(batches).toEqual([[2, 3, 32, 32]]);
    expect(Object.keys(results[0]!.json as object)[0]).toBe('red');
    expect(Object.keys(results[1]!.json as object)[0]).toBe('blue');
    expectClose(results[0]!.json, await expectedProbabilities(red));
    expectClose(results[1]!.json, await expectedProbabilities(blue));
    expect(results[2]).toMatchObject({ ok: false, status: 400, error: { code: 'KILN_ERR_BAD_IMAGE' } });
  });

  it('answers with as many classes as handler.topk asks for', async () => {
    const [result] = await runHandler(ImageClassifierHandler, [{ file: blue }], { modelPath, config: { handler: { topk: 1 } } });
    expect(Object.keys(result!.json as object)).toEqual(['blue']);
  });
});
