import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Tensor } from 'onnxruntime-node';
import { BaseHandler } from '../handler/base-handler.js';
import { requestBytes } from '../handler/request-bytes.js';
import type { HandlerContext, KilnRequest, Tensors } from '../handler/types.js';
import { IMAGENET_MEAN, IMAGENET_STD, centerCrop, decodeImage, imageToTensor, resizeImage, type Size } from '../image/image.js';
import { softmax, topK } from '../tensor/softmax.js';
import { imageLayout, numberList, type ImageLayout } from './image-options.js';

/** The `handler:` section image_classifier reads; every key is optional. */
export interface ImageClassifierConfig {
  /** Shorter side after resizing (default 256). */
  resize?: number;
  /** Centre crop (default 224, or the model's fixed input size). */
  crop?: number;
  mean?: number[];
  std?: number[];
  /** How many classes to answer with (default 5). */
  topk?: number;
  /** Apply softmax to the output: true, false, or "auto" (when the output is not already probabilities). */
  softmax?: boolean | 'auto';
  /** Label file in the archive, TorchServe's index_to_name.json format (default index_to_name.json). */
  labels?: string;
}

/**
 * `--handler image_classifier`: an image in, `{label: probability}` for the top k classes out,
 * as TorchServe's image_classifier answers.
 */
export class ImageClassifier extends BaseHandler<unknown, Record<string, number>, ImageClassifierConfig> {
  protected labels: Record<string, string> = {};
  protected layout!: ImageLayout;
  protected settings!: { resize: number; crop: Size; mean: number[]; std: number[]; topk: number; softmax: boolean | 'auto' };

  override async initialize(context: HandlerContext<ImageClassifierConfig>): Promise<void> {
    await super.initialize(context);
    const c = context.config.handler;
    this.layout = imageLayout(context.signature);
    // A model with a fixed input size is cropped to exactly that size, square or not.
    const fixed = this.layout.height !== undefined && this.layout.width !== undefined;
    const crop: Size = c.crop ?? (fixed ? { width: this.layout.width!, height: this.layout.height! } : 224);
    const cropMax = typeof crop === 'number' ? crop : Math.max(crop.width, crop.height);
    this.settings = {
      resize: Math.max(c.resize ?? 256, cropMax),
      crop,
      mean: numberList(c.mean, 'mean', 3) ?? [...IMAGENET_MEAN],
      std: numberList(c.std, 'std', 3) ?? [...IMAGENET_STD],
      topk: c.topk ?? 5,
      softmax: c.softmax ?? 'auto',
    };
    if (c.labels !== undefined && !existsSync(join(context.modelDir, c.labels))) {
      throw new TypeError(`handler.labels names ${c.labels}, which is not in the archive; add it with --extra-files`);
    }
    this.labels = readLabels(join(context.modelDir, c.labels ?? 'index_to_name.json'));
  }

  override async preprocess(request: KilnRequest): Promise<Tensors> {
    const image = await decodeImage(requestBytes(request));
    const cropped = centerCrop(await resizeImage(image, this.settings.resize), this.settings.crop);
    return {
      [this.layout.input]: imageToTensor(cropped, { layout: this.layout.layout, mean: this.settings.mean, std: this.settings.std }),
    };
  }

  override postprocess(output: Tensors): Record<string, number> {
    const scores = Object.values(output)[0] as Tensor;
    const row = scores.data as Float32Array;
    const probabilities = this.needsSoftmax(row) ? softmax(row) : row;
    const answer: Record<string, number> = {};
    for (const { index, value } of topK(probabilities, this.settings.topk)) answer[this.labels[String(index)] ?? String(index)] = value;
    return answer;
  }

  private needsSoftmax(row: Float32Array): boolean {
    if (this.settings.softmax !== 'auto') return this.settings.softmax;
    let sum = 0;
    for (const v of row) {
      if (v < 0 || v > 1) return true;
      sum += v;
    }
    return Math.abs(sum - 1) > 1e-3;
  }
}

/** TorchServe's index_to_name.json: `{"0": "tench"}` or `{"0": ["n01440764", "tench"]}`. */
export function readLabels(path: string): Record<string, string> {
  if (!existsSync(path)) return {};
  const raw = JSON.parse(readFileSync(path, 'utf8')) as Record<string, string | string[]>;
  return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, Array.isArray(v) ? String(v[v.length - 1]) : String(v)]));
}
