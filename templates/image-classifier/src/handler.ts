import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  BaseHandler,
  decodeImage,
  imageToTensor,
  requestBytes,
  resizeImage,
  softmax,
  topK,
  type HandlerContext,
  type KilnRequest,
  type Tensors,
} from '@kiln/handler-sdk';

/** The `handler:` section of model-config.yaml. */
export interface ClassifierConfig {
  /** How many classes to answer with, most likely first (default 3). */
  topk?: number;
}

/** `{label: probability}`, most likely first. */
export type Classification = Record<string, number>;

/**
 * An image in, the most likely classes out. model.onnx averages each colour channel and takes the
 * three means as logits, so it names an image's dominant colour; swap in your own model, labels and
 * input size and this handler stays the same.
 *
 * BaseHandler.handle() calls preprocess once per request, stacks the tensors into one batch, makes
 * one ONNX Runtime run and calls postprocess once per request with that request's row.
 */
export default class ImageClassifierHandler extends BaseHandler<unknown, Classification, ClassifierConfig> {
  private labels: Record<string, string> = {};
  private topk = 3;
  private input = 'image';
  private output = 'logits';
  private size = { width: 32, height: 32 };

  override async initialize(context: HandlerContext<ClassifierConfig>): Promise<void> {
    await super.initialize(context); // creates this.session from the archive's --serialized-file
    const { topk = this.topk } = context.config.handler;
    if (!Number.isInteger(topk) || topk < 1) {
      throw new TypeError(`handler.topk in model-config.yaml must be a whole number of at least 1, received ${JSON.stringify(topk)}`);
    }
    this.topk = topk;

    // Read the names and the input size from the model, so a re-exported model needs no code change.
    const input = context.signature?.inputs[0];
    const [, , height, width] = input?.shape ?? [];
    if (input !== undefined) this.input = input.name;
    if (height !== undefined && height > 0 && width !== undefined && width > 0) this.size = { width, height };
    this.output = context.signature?.outputs[0]?.name ?? this.output;

    // Extra files sit at the root of the unpacked archive (--extra-files index_to_name.json).
    this.labels = JSON.parse(await readFile(join(context.modelDir, 'index_to_name.json'), 'utf8')) as Record<string, string>;
  }

  override async preprocess(request: KilnRequest): Promise<Tensors> {
    // A body that is not an image fails this request alone with a 400 KILN_ERR_BAD_IMAGE.
    const image = await resizeImage(await decodeImage(requestBytes(request)), this.size);
    // The model takes pixels in 0–1, without ImageNet mean/std normalisation.
    return { [this.input]: imageToTensor(image, { scale: 1 / 255 }) };
  }

  override postprocess(output: Tensors): Classification {
    const probabilities = softmax(output[this.output]!.data as Float32Array);
    const answer: Classification = {};
    for (const { index, value } of topK(probabilities, this.topk)) answer[this.labels[index] ?? String(index)] = value;
    return answer;
  }
}
