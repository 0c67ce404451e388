import type { Signature } from '../manifest/manifest.js';

export interface ImageLayout {
  input: string;
  layout: 'NCHW' | 'NHWC';
  /** The model's fixed height and width, when its signature fixes them. */
  height: number | undefined;
  width: number | undefined;
}

/** Reads the image input's name, layout and fixed size from the signature. */
export function imageLayout(signature: Signature | undefined, inputName?: string): ImageLayout {
  const spec = inputName === undefined ? signature?.inputs[0] : signature?.inputs.find((s) => s.name === inputName);
  const shape = spec?.shape;
  const fixed = (d: number | undefined) => (d === undefined || d < 0 ? undefined : d);
  if (shape !== undefined && shape.length === 4 && shape[3] === 3 && shape[1] !== 3) {
    return { input: spec!.name, layout: 'NHWC', height: fixed(shape[1]), width: fixed(shape[2]) };
  }
  return { input: spec?.name ?? inputName ?? 'input', layout: 'NCHW', height: fixed(shape?.[2]), width: fixed(shape?.[3]) };
}

export function numberList(value: unknown, name: string, length: number): number[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.length !== length || value.some((v) => typeof v !== 'number')) {
    throw new TypeError(`handler.${name} must be a list of ${length} numbers, received ${JSON.stringify(value)}`);
  }
  return value as number[];
}
