import { Tensor } from 'onnxruntime-node';
import { sdkError } from '../errors/codes.js';
import type { Signature } from '../manifest/manifest.js';
import { checkAgainstSpec, checkNoneMissing, inputSpec, shapeText, type TypedArray } from '../tensor/decode.js';
import { datatypeOf } from '../tensor/tensor.js';
import type { Tensors } from './types.js';

/**
 * Checks one request's tensors against the model's inputs and gives each a leading batch
 * dimension: a tensor one rank short of the signature is a single row and gets dimension 0 of 1.
 * The checks are the ones every route applies to a client's tensors (`tensor/decode.ts`).
 * Returns the tensors and the number of rows they carry.
 */
export function conformToSignature(inputs: Tensors, signature: Signature | undefined): { tensors: Tensors; rows: number } {
  if (signature === undefined) return { tensors: inputs, rows: rowsOf(inputs) };
  for (const name of Object.keys(inputs)) inputSpec(name, signature);
  checkNoneMissing(Object.keys(inputs), signature);
  const tensors: Tensors = {};
  for (const spec of signature.inputs) {
    const t = inputs[spec.name]!;
    const dims = checkAgainstSpec(spec.name, datatypeOf(t), t.dims, spec);
    tensors[spec.name] = dims === t.dims ? t : t.reshape(dims);
  }
  return { tensors, rows: rowsOf(tensors) };
}

function rowsOf(tensors: Tensors): number {
  let rows: number | undefined;
  for (const [name, t] of Object.entries(tensors)) {
    const n = t.dims[0] ?? 1;
    if (rows !== undefined && n !== rows) {
      throw mismatch(`inputs disagree on the batch dimension: "${name}" has ${n} rows, another input has ${rows}`, name);
    }
    rows = n;
  }
  return rows ?? 1;
}

function mismatch(message: string, input: string) {
  return sdkError('KILN_ERR_INPUT_MISMATCH', message, { details: { input } });
}

/** A key equal for requests whose tensors can be stacked: same names, types and trailing dims. */
export function batchKey(tensors: Tensors): string {
  return Object.keys(tensors)
    .sort()
    .map((name) => `${name}:${tensors[name]!.type}:${tensors[name]!.dims.slice(1).join('x')}`)
    .join('|');
}

/**
 * Stacks several requests' tensors along dimension 0. Every request must give the same names,
 * types and trailing dimensions; mixed shapes are an error naming both requests. One request is
 * returned as is, without a copy.
 *
 * `scratch`, when given, keeps one buffer per input name from batch to batch: the stacked tensors
 * are views of it, so a steady stream of batches allocates (and page-faults, and collects) nothing.
 * The batch is then valid only until the next call with the same `scratch`.
 */
export function collate(items: readonly Tensors[], scratch?: Map<string, ArrayBuffer>): Tensors {
  if (items.length === 0) throw new Error('collate: no requests');
  if (items.length === 1) return items[0]!;
  const first = items[0]!;
  const batch: Tensors = {};
  for (const name of Object.keys(first)) {
    const head = first[name]!;
    let rows = 0;
    items.forEach((item, i) => {
      const t = item[name];
      if (t === undefined) throw mismatch(`cannot batch: request ${i} has no input "${name}" but request 0 has`, name);
      if (t.type !== head.type || t.dims.length !== head.dims.length || t.dims.some((d, axis) => axis > 0 && d !== head.dims[axis])) {
        throw mismatch(
          `cannot batch input "${name}": request 0 has ${head.type} ${shapeText(head.dims)}, request ${i} has ${t.type} ${shapeText(t.dims)}; only dimension 0 may differ`,
          name,
        );
      }
      rows += t.dims[0]!;
    });
    batch[name] = concat(
      items.map((item) => item[name]!),
      [rows, ...head.dims.slice(1)],
      scratch,
      name,
    );
  }
  return batch;
}

type TypedArrayClass = new (buffer: ArrayBuffer, byteOffset?: number, length?: number) => TypedArray;

function concat(parts: Tensor[], dims: number[], scratch: Map<string, ArrayBuffer> | undefined, name: string): Tensor {
  const head = parts[0]!;
  if (head.type === 'string')
    return new Tensor(
      'string',
      parts.flatMap((p) => p.data as string[]),
      dims,
    );
  const first = head.data as TypedArray;
  const total = parts.reduce((n, p) => n + (p.data as TypedArray).length, 0);
  const bytes = total * first.BYTES_PER_ELEMENT;
  let buffer = scratch?.get(name);
  if (buffer === undefined || buffer.byteLength < bytes) {
    buffer = new ArrayBuffer(bytes);
    scratch?.set(name, buffer);
  }
  const out = new (first.constructor as TypedArrayClass)(buffer, 0, total);
  // Copied as bytes: every part has the same element type (batchKey groups by it).
  const into = new Uint8Array(buffer, 0, bytes);
  let offset = 0;
  for (const part of parts) {
    const data = part.data as TypedArray;
    into.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), offset);
    offset += data.byteLength;
  }
  return new Tensor(head.type as 'float32', out as Float32Array, dims);
}

/**
 * Splits a batch's outputs back into one set per request, by the rows each request put in.
 * An output whose dimension 0 is the batch's row count is sliced (views, no copies), unless the
 * signature fixes that dimension (then it is not a batch dimension); any other output is given
 * whole to every request.
 */
export function split(outputs: Tensors, rows: readonly number[], signature?: Signature): Tensors[] {
  const total = rows.reduce((n, r) => n + r, 0);
  const parts: Tensors[] = rows.map(() => ({}));
  for (const [name, t] of Object.entries(outputs)) {
    const declared = signature?.outputs.find((o) => o.name === name)?.shape?.[0];
    const batched = declared === undefined || declared === -1;
    if (rows.length === 1 || t.dims[0] !== total || !batched) {
      for (const part of parts) part[name] = t;
      continue;
    }
    const rowSize = t.dims.slice(1).reduce((n, d) => n * d, 1);
    let start = 0;
    rows.forEach((count, i) => {
      const end = start + count;
      const data = t.data as TypedArray | string[];
      const slice = Array.isArray(data) ? data.slice(start * rowSize, end * rowSize) : data.subarray(start * rowSize, end * rowSize);
      parts[i]![name] = new Tensor(t.type as 'float32', slice as Float32Array, [count, ...t.dims.slice(1)]);
      start = end;
    });
  }
  return parts;
}
