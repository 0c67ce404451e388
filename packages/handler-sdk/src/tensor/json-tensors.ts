import type { Tensor } from 'onnxruntime-node';
import { sdkError } from '../errors/codes.js';
import { DATATYPES, type Datatype } from '../manifest/datatypes.js';
import type { Signature } from '../manifest/manifest.js';
import { tensorFromDatatype } from './tensor.js';

interface JsonTensor {
  name?: string;
  datatype?: string;
  shape?: number[];
  data: unknown;
}

/**
 * Reads named tensors from a JSON body, in the KServe v2 form
 * `{"inputs": [{"name", "datatype", "shape", "data"}]}` or the map form
 * `{"inputs": {"x": {"shape", "data", "datatype"?}}}`. `data` may be flat or nested; the datatype
 * and shape default to the signature's where it fixes them.
 */
export function tensorsFromJson(body: unknown, signature: Signature | undefined): Record<string, Tensor> {
  const inputs = (body as { inputs?: unknown } | null)?.inputs;
  if (inputs === undefined || inputs === null || typeof inputs !== 'object') {
    throw sdkError('KILN_ERR_BAD_REQUEST', 'expected a JSON body with "inputs": a list of {name, datatype, shape, data} or a map of name → {shape, data}');
  }
  const list: JsonTensor[] = Array.isArray(inputs)
    ? (inputs as JsonTensor[])
    : Object.entries(inputs as Record<string, JsonTensor>).map(([name, t]) => ({ ...t, name }));
  const out: Record<string, Tensor> = {};
  for (const [i, item] of list.entries()) {
    const name = item?.name;
    if (typeof name !== 'string' || name === '') throw sdkError('KILN_ERR_BAD_REQUEST', `inputs[${i}] has no "name"`);
    const spec = signature?.inputs.find((s) => s.name === name);
    const datatype = (item.datatype ?? spec?.datatype) as Datatype | undefined;
    if (datatype === undefined || !(DATATYPES as readonly string[]).includes(datatype)) {
      throw sdkError('KILN_ERR_BAD_REQUEST', `input "${name}" needs a "datatype", one of ${DATATYPES.join(', ')}; received ${JSON.stringify(item.datatype)}`);
    }
    const data = flatten(item.data, name);
    const shape = item.shape ?? inferShape(item.data);
    if (!Array.isArray(shape) || shape.some((d) => !Number.isInteger(d) || d < 0)) {
      throw sdkError('KILN_ERR_BAD_REQUEST', `input "${name}" has an invalid "shape": ${JSON.stringify(item.shape)}; give non-negative integers`);
    }
    out[name] = tensorFromDatatype(datatype, data as number[], shape);
  }
  return out;
}

function flatten(data: unknown, name: string): unknown[] {
  if (!Array.isArray(data)) throw sdkError('KILN_ERR_BAD_REQUEST', `input "${name}" needs "data" as an array, flat or nested`);
  return (data as unknown[]).flat(Infinity);
}

/** The shape of a nested array, e.g. [[1,2,3],[4,5,6]] → [2, 3]. */
function inferShape(data: unknown): number[] {
  const shape: number[] = [];
  let level = data;
  while (Array.isArray(level)) {
    shape.push(level.length);
    level = level[0];
  }
  return shape;
}
