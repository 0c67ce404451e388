import { join } from 'node:path';
import type { Tensor } from 'onnxruntime-node';
import { BaseHandler } from '../handler/base-handler.js';
import { requestBytes } from '../handler/request-bytes.js';
import type { HandlerContext, KilnRequest, Tensors } from '../handler/types.js';
import { decodeImage, imageToTensor, resizeImage } from '../image/image.js';
import { readLabels } from './image-classifier.js';
import { imageLayout, numberList, type ImageLayout } from './image-options.js';

export interface ObjectDetectorConfig {
  /** Minimum score for a detection to be answered (default 0.5). */
  threshold?: number;
  /** Output names; defaults: `boxes`, `labels`, `scores`, else the outputs in that order. */
  outputs?: { boxes?: string; labels?: string; scores?: string };
  mean?: number[];
  std?: number[];
  labels?: string;
}

export type Detection = Record<string, number[] | number>;

/**
 * `--handler object_detector`: an image in; out, each detection above the threshold as
 * `{"<label>": [x1, y1, x2, y2], "score": s}` in the original image's pixels (TorchServe's shape).
 * Expects torchvision-style outputs: boxes [N, 4], labels [N], scores [N] for one image, so each
 * request runs on its own.
 */
export class ObjectDetector extends BaseHandler<unknown, Detection[], ObjectDetectorConfig> {
  protected labels: Record<string, string> = {};
  protected layout!: ImageLayout;
  protected threshold = 0.5;
  protected names: { boxes: string; labels: string; scores: string } = { boxes: 'boxes', labels: 'labels', scores: 'scores' };
  protected mean: number[] | undefined;
  protected std: number[] | undefined;

  override async initialize(context: HandlerContext<ObjectDetectorConfig>): Promise<void> {
    await super.initialize(context);
    const c = context.config.handler;
    this.layout = imageLayout(context.signature);
    this.threshold = c.threshold ?? 0.5;
    this.mean = numberList(c.mean, 'mean', 3);
    this.std = numberList(c.std, 'std', 3);
    const outputs = context.signature?.outputs.map((o) => o.name) ?? [];
    const pick = (key: 'boxes' | 'labels' | 'scores', at: number) =>
      c.outputs?.[key] ?? (outputs.includes(key) ? key : (outputs[at] ?? key));
    this.names = { boxes: pick('boxes', 0), labels: pick('labels', 1), scores: pick('scores', 2) };
    this.labels = readLabels(join(context.modelDir, c.labels ?? 'index_to_name.json'));
  }

  override async handle(requests: KilnRequest[], context: HandlerContext<ObjectDetectorConfig>): Promise<(Detection[] | Error)[]> {
    const results: (Detection[] | Error)[] = [];
    for (const request of requests) results.push(...(await super.handle([request], context)));
    return results;
  }

  override async preprocess(request: KilnRequest): Promise<Tensors> {
    const image = await decodeImage(requestBytes(request));
    const { height, width } = this.layout;
    const input = height !== undefined && width !== undefined ? await resizeImage(image, { width, height }) : image;
    request.locals.size = { width: image.width, height: image.height, inputWidth: input.width, inputHeight: input.height };
    const options = { layout: this.layout.layout, ...(this.mean ? { mean: this.mean } : {}), ...(this.std ? { std: this.std } : {}) };
    return { [this.layout.input]: imageToTensor(input, options) };
  }

  override postprocess(output: Tensors, request: KilnRequest): Detection[] {
    const boxes = (output[this.names.boxes] as Tensor).data as Float32Array;
    const labels = (output[this.names.labels] as Tensor).data as ArrayLike<number | bigint>;
    const scores = (output[this.names.scores] as Tensor).data as Float32Array;
    const size = request.locals.size as { width: number; height: number; inputWidth: number; inputHeight: number };
    const sx = size.width / size.inputWidth;
    const sy = size.height / size.inputHeight;
    const detections: Detection[] = [];
    for (let i = 0; i < scores.length; i++) {
      if (scores[i]! < this.threshold) continue;
      const label = String(Number(labels[i]!));
      const box = [boxes[i * 4]! * sx, boxes[i * 4 + 1]! * sy, boxes[i * 4 + 2]! * sx, boxes[i * 4 + 3]! * sy];
      detections.push({ [this.labels[label] ?? label]: box, score: scores[i]! });
    }
    return detections;
  }
}
