import type { Tensor } from 'onnxruntime-node';
import { BaseHandler } from '../handler/base-handler.js';
import { requestBytes } from '../handler/request-bytes.js';
import type { HandlerContext, KilnRequest, Tensors } from '../handler/types.js';
import { IMAGENET_MEAN, IMAGENET_STD, decodeImage, imageToTensor, resizeImage } from '../image/image.js';
import { imageLayout, numberList, type ImageLayout } from './image-options.js';

export interface ImageSegmenterConfig {
  /** The output holding per-class scores [1, C, H, W] (default: the first output). */
  output?: string;
  mean?: number[];
  std?: number[];
}

/**
 * `--handler image_segmenter`: an image in, the class of every pixel out, as a list of H rows of
 * W class indices (the argmax over the model's [1, C, H, W] scores).
 */
export class ImageSegmenter extends BaseHandler<unknown, number[][], ImageSegmenterConfig> {
  protected layout!: ImageLayout;
  protected mean: number[] = [...IMAGENET_MEAN];
  protected std: number[] = [...IMAGENET_STD];
  protected output: string | undefined;

  override async initialize(context: HandlerContext<ImageSegmenterConfig>): Promise<void> {
    await super.initialize(context);
    const c = context.config.handler;
    this.layout = imageLayout(context.signature);
    this.mean = numberList(c.mean, 'mean', 3) ?? this.mean;
    this.std = numberList(c.std, 'std', 3) ?? this.std;
    this.output = c.output;
    const outputs = context.signature?.outputs.map((o) => o.name) ?? [];
    if (c.output !== undefined && !outputs.includes(c.output)) {
      throw new TypeError(`handler.output "${c.output}" is not an output of the model; its outputs are: ${outputs.join(', ')}`);
    }
  }

  override async preprocess(request: KilnRequest): Promise<Tensors> {
    const image = await decodeImage(requestBytes(request));
    const { height, width } = this.layout;
    const input = height !== undefined && width !== undefined ? await resizeImage(image, { width, height }) : image;
    return { [this.layout.input]: imageToTensor(input, { layout: this.layout.layout, mean: this.mean, std: this.std }) };
  }

  override postprocess(output: Tensors): number[][] {
    const scores = (this.output === undefined ? Object.values(output)[0] : output[this.output]) as Tensor;
    const [, classes, height, width] = scores.dims as [number, number, number, number];
    const data = scores.data as Float32Array;
    const plane = height * width;
    const map: number[][] = [];
    for (let y = 0; y < height; y++) {
      const row = new Array<number>(width);
      for (let x = 0; x < width; x++) {
        const p = y * width + x;
        let best = 0;
        for (let c = 1; c < classes; c++) if (data[c * plane + p]! > data[best * plane + p]!) best = c;
        row[x] = best;
      }
      map.push(row);
    }
    return map;
  }
}
