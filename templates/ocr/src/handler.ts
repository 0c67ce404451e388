import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import sharp from 'sharp';
import {
  BaseHandler,
  Tensor,
  argmax,
  createSession,
  decodeImage,
  requestBytes,
  type HandlerContext,
  type InferenceSession,
  type KilnRequest,
  type RawImage,
  type Tensors,
} from '@kiln/handler-sdk';

/** The `handler:` section of model-config.yaml. Paths are relative to the unpacked archive. */
export interface OcrConfig {
  /** The recognition model's character list, one a line (default ppocr_keys_v1.txt). */
  dictionary?: string;
  /** The text direction classifier (default ch_ppocr_mobile_v2.0_cls_infer.onnx). */
  classifier?: string;
}

export interface OcrAnswer {
  text: string;
  /** The mean probability of the characters read, 0–1. */
  confidence: number;
  /** Whether the image was turned 180° because the classifier found it upside down. */
  rotated: boolean;
}

const HEIGHT = 48;
/** Every line is padded to this width, so lines of any length stack into one batch. */
const RECOGNITION_WIDTH = 320;
const CLASSIFIER_WIDTH = 192;
/** The classifier's score for "180°" above which the image is turned before it is read. */
const ROTATE_ABOVE = 0.9;

/**
 * Reads one line of text from an image with PaddleOCR's PP-OCRv4 recognition model (the archive's
 * --serialized-file). A second, small model classifies the line as upright or upside down first.
 *
 * Pre- and postprocessing follow PaddleOCR's own (resize_norm_img and the CTC label decoder), so
 * the model reads text exactly as it was trained to.
 */
export default class OcrHandler extends BaseHandler<unknown, OcrAnswer, OcrConfig> {
  private classifier: InferenceSession | undefined;
  /** Class k of the recognition output: 0 is the CTC blank, then the dictionary, then a space. */
  private characters: string[] = [];
  private input = 'x';
  private output = 'softmax_11.tmp_0';

  override async initialize(context: HandlerContext<OcrConfig>): Promise<void> {
    await super.initialize(context); // creates this.session for the recognition model
    const { dictionary = 'ppocr_keys_v1.txt', classifier = 'ch_ppocr_mobile_v2.0_cls_infer.onnx' } = context.config.handler;

    const lines = (await readFile(resolve(context.modelDir, dictionary), 'utf8')).split(/\r?\n/);
    if (lines.at(-1) === '') lines.pop();
    this.characters = ['', ...lines, ' '];

    const input = context.signature?.inputs[0];
    const output = context.signature?.outputs[0];
    this.input = input?.name ?? this.input;
    this.output = output?.name ?? this.output;
    // A dictionary that does not match the model reads every line wrong without failing: refuse it.
    const classes = output?.shape?.at(-1);
    if (classes !== undefined && classes > 0 && classes !== this.characters.length) {
      throw new TypeError(
        `the dictionary ${dictionary} gives ${this.characters.length} classes (blank, ${lines.length} lines, space) ` +
          `but the model answers ${classes}; pass the dictionary the model was trained with`,
      );
    }

    ({ session: this.classifier } = await createSession(resolve(context.modelDir, classifier), {
      executionProviders: context.executionProviders,
      deviceId: context.device.id,
      intraOpNumThreads: context.intraOpNumThreads,
      logger: context.logger,
    }));
  }

  // The classifier runs here, once per request: it is tiny next to the recognition model, and a
  // failure on one image then fails that request alone.
  override async preprocess(request: KilnRequest): Promise<Tensors> {
    // Upright by its EXIF orientation, transparency onto white: text in PNGs is often dark on transparent.
    const image = await decodeImage(requestBytes(request));
    const rotated = (await this.upsideDownScore(image)) > ROTATE_ABOVE;
    request.locals.rotated = rotated; // read back in postprocess
    return { [this.input]: await lineTensor(image, RECOGNITION_WIDTH, rotated) };
  }

  override postprocess(output: Tensors, request: KilnRequest): OcrAnswer {
    const probabilities = output[this.output]!; // [1, steps, classes], already softmaxed by the model
    const [, steps = 0, classes = 0] = probabilities.dims;
    const { text, confidence } = ctcDecode(probabilities.data as Float32Array, steps, classes, this.characters);
    return { text, confidence, rotated: request.locals.rotated === true };
  }

  override async dispose(): Promise<void> {
    await this.classifier?.release();
    this.classifier = undefined;
    await super.dispose();
  }

  private async upsideDownScore(image: RawImage): Promise<number> {
    const classifier = this.classifier!;
    const line = await lineTensor(image, CLASSIFIER_WIDTH, false);
    const result = await classifier.run({ [classifier.inputNames[0]!]: line });
    return (result[classifier.outputNames[0]!]!.data as Float32Array)[1]!; // labels: ['0', '180']
  }
}

/**
 * PaddleOCR's resize_norm_img: resize to height 48 keeping the aspect ratio (at most `width`
 * wide), scale to −1…1, channels in B, G, R order, and pad on the right with 0 up to `width`.
 * Returns [1, 3, 48, width].
 */
async function lineTensor(image: RawImage, width: number, rotate: boolean): Promise<Tensor> {
  const resized = Math.min(width, Math.ceil((HEIGHT * image.width) / image.height));
  let pipeline = sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } });
  if (rotate) pipeline = pipeline.rotate(180);
  const pixels = await pipeline.resize(resized, HEIGHT, { fit: 'fill' }).raw().toBuffer();
  const out = new Float32Array(3 * HEIGHT * width);
  for (let c = 0; c < 3; c++) {
    const source = 2 - c; // BGR: the models were trained on OpenCV's channel order
    for (let y = 0; y < HEIGHT; y++) {
      for (let x = 0; x < resized; x++) out[(c * HEIGHT + y) * width + x] = (pixels[(y * resized + x) * 3 + source]! / 255 - 0.5) / 0.5;
    }
  }
  return new Tensor('float32', out, [1, 3, HEIGHT, width]);
}

/**
 * Greedy CTC decoding: the most likely class at each step, dropping blanks and repeats of the
 * previous step's class (a blank between two equal characters keeps both).
 */
export function ctcDecode(
  probabilities: Float32Array,
  steps: number,
  classes: number,
  characters: readonly string[],
): { text: string; confidence: number } {
  let text = '';
  let sum = 0;
  let kept = 0;
  let previous = -1;
  for (let t = 0; t < steps; t++) {
    const k = argmax(probabilities, t * classes, classes);
    if (k !== 0 && k !== previous) {
      text += characters[k] ?? '';
      sum += probabilities[t * classes + k]!;
      kept++;
    }
    previous = k;
  }
  return { text: text.trim(), confidence: kept === 0 ? 0 : sum / kept };
}
