import type Sharp from 'sharp';
import { Tensor } from 'onnxruntime-node';
import { sdkError } from '../errors/codes.js';
import { inNative } from '../handler/native-calls.js';

let sharpModule: Promise<typeof Sharp> | undefined;

/**
 * sharp (and libvips) load on the first image a worker decodes, not when the SDK is imported: a
 * worker whose model never sees an image starts without them.
 */
function sharp(...args: Parameters<typeof Sharp>): Promise<ReturnType<typeof Sharp>> {
  sharpModule ??= import('sharp').then((m) => m.default);
  return sharpModule.then((create) => create(...args));
}

/** Decoded pixels: 8-bit RGB, row-major, 3 bytes a pixel. */
export interface RawImage {
  data: Buffer;
  width: number;
  height: number;
  channels: 3;
}

export type Size = number | { width: number; height: number };

/** Images larger than this many pixels are refused before decoding (a decompression bomb guard). */
export const DEFAULT_MAX_PIXELS = 64 * 1024 * 1024;

/**
 * Decodes JPEG, PNG, WebP, GIF (first frame) or TIFF into RGB pixels with sharp. EXIF orientation
 * is applied (phone photos come upright), transparency is flattened onto white and greyscale
 * expanded. Anything else is a 400 `KILN_ERR_BAD_IMAGE` for that request.
 */
export async function decodeImage(bytes: Uint8Array, options: { maxPixels?: number } = {}): Promise<RawImage> {
  if (bytes.length === 0) throw sdkError('KILN_ERR_BAD_IMAGE', 'the request has no image: the body is empty');
  try {
    const image = await sharp(bytes, { limitInputPixels: options.maxPixels ?? DEFAULT_MAX_PIXELS, pages: 1, autoOrient: true });
    const { data, info } = await inNative(() =>
      image.flatten({ background: '#ffffff' }).toColourspace('srgb').raw().toBuffer({ resolveWithObject: true }),
    );
    if (info.channels !== 3) throw new Error(`decoded ${info.channels} channels, expected 3`);
    return { data, width: info.width, height: info.height, channels: 3 };
  } catch (error) {
    throw sdkError(
      'KILN_ERR_BAD_IMAGE',
      `the body is not an image Kiln can decode (JPEG, PNG, WebP, GIF, TIFF): ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
}

/**
 * Resizes with bilinear interpolation. A number resizes the shorter side to it, keeping the aspect
 * ratio (torchvision's `Resize(n)`); `{width, height}` resizes to exactly that size.
 */
export async function resizeImage(image: RawImage, size: Size): Promise<RawImage> {
  let width: number;
  let height: number;
  if (typeof size === 'number') {
    const scale = size / Math.min(image.width, image.height);
    width = image.width <= image.height ? size : Math.floor(image.width * scale);
    height = image.height < image.width ? size : Math.floor(image.height * scale);
  } else {
    ({ width, height } = size);
  }
  if (width === image.width && height === image.height) return image;
  const pipeline = await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } });
  const data = await inNative(() => pipeline.resize(width, height, { kernel: 'linear', fit: 'fill' }).raw().toBuffer());
  return { data, width, height, channels: 3 };
}

/** Crops the centre (torchvision's `CenterCrop`: the offset is rounded half to even as Python does). */
export function centerCrop(image: RawImage, size: Size): RawImage {
  const width = typeof size === 'number' ? size : size.width;
  const height = typeof size === 'number' ? size : size.height;
  if (width > image.width || height > image.height) {
    throw sdkError('KILN_ERR_BAD_IMAGE', `cannot crop ${width}×${height} from a ${image.width}×${image.height} image; resize it first`);
  }
  const left = roundHalfEven((image.width - width) / 2);
  const top = roundHalfEven((image.height - height) / 2);
  const data = Buffer.allocUnsafe(width * height * 3);
  for (let y = 0; y < height; y++) {
    const from = ((top + y) * image.width + left) * 3;
    image.data.copy(data, y * width * 3, from, from + width * 3);
  }
  return { data, width, height, channels: 3 };
}

function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const diff = x - floor;
  if (diff !== 0.5) return Math.round(x);
  return floor % 2 === 0 ? floor : floor + 1;
}

export interface ToTensorOptions {
  /** `NCHW` (PyTorch exports) or `NHWC` (TensorFlow exports). Default NCHW. */
  layout?: 'NCHW' | 'NHWC';
  /** Per-channel mean and std applied after scaling; defaults: no normalisation. */
  mean?: readonly number[];
  std?: readonly number[];
  /** Multiplies each 0–255 value first. Default 1/255. */
  scale?: number;
  /** Channel order of the tensor. Default RGB; OpenCV-trained models often want BGR. */
  channelOrder?: 'RGB' | 'BGR';
}

export const IMAGENET_MEAN = Object.freeze([0.485, 0.456, 0.406]);
export const IMAGENET_STD = Object.freeze([0.229, 0.224, 0.225]);

/** Converts pixels to a float32 tensor of shape [1, 3, H, W] (or [1, H, W, 3]): (v·scale − mean) / std. */
export function imageToTensor(image: RawImage, options: ToTensorOptions = {}): Tensor {
  const { width, height, data } = image;
  const scale = options.scale ?? 1 / 255;
  const mean = options.mean ?? [0, 0, 0];
  const std = options.std ?? [1, 1, 1];
  const bgr = options.channelOrder === 'BGR';
  const plane = width * height;
  const out = new Float32Array(plane * 3);
  const nchw = (options.layout ?? 'NCHW') === 'NCHW';
  for (let c = 0; c < 3; c++) {
    const source = bgr ? 2 - c : c;
    const m = mean[c]!;
    const inv = 1 / std[c]!;
    for (let p = 0; p < plane; p++) {
      const value = (data[p * 3 + source]! * scale - m) * inv;
      out[nchw ? c * plane + p : p * 3 + c] = value;
    }
  }
  return new Tensor('float32', out, nchw ? [1, 3, height, width] : [1, height, width, 3]);
}
