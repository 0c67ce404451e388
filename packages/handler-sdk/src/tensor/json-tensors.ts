import { Tensor } from 'onnxruntime-node';
import { sdkError } from '../errors/codes.js';
import type { Signature } from '../manifest/manifest.js';
import { DATATYPE_TO_TENSOR_TYPE } from './datatypes.js';
import { checkNoneMissing, decodeClientTensor, type TypedArray } from './decode.js';

interface JsonTensor {
  name?: unknown;
  datatype?: unknown;
  shape?: unknown;
  data?: unknown;
}

/**
 * Reads named tensors from a JSON body, in the KServe v2 form
 * `{"inputs": [{"name", "datatype", "shape", "data"}]}` or the map form
 * `{"inputs": {"x": {"shape", "data", "datatype"?}}}`. `data` may be flat or nested; the datatype
 * defaults to the signature's, the shape to the nesting of `data`. Each tensor is checked and
 * decoded exactly as the v2 route does it (`decodeClientTensor`), so a bad tensor gets the same
 * error on every route.
 */
export function tensorsFromJson(body: unknown, signature: Signature | undefined): Record<string, Tensor> {
  const inputs = (body as { inputs?: unknown } | null)?.inputs;
  if (inputs === undefined || inputs === null || typeof inputs !== 'object') {
    throw sdkError(
      'KILN_ERR_BAD_REQUEST',
      'expected a JSON body with "inputs": a list of {name, datatype, shape, data} or a map of name → {shape, data}',
    );
  }
  const list: JsonTensor[] = Array.isArray(inputs)
    ? inputs
    : Object.entries(inputs as Record<string, JsonTensor>).map(([name, t]) => ({ ...t, name }));
  const out: Record<string, Tensor> = {};
  for (const [i, item] of list.entries()) {
    const name = item?.name;
    if (typeof name !== 'string' || name === '') throw sdkError('KILN_ERR_BAD_REQUEST', `inputs[${i}] has no "name"`);
    if (name in out) throw sdkError('KILN_ERR_BAD_REQUEST', `input "${name}" is given twice`, { details: { input: name } });
    const datatype = item.datatype ?? signature?.inputs.find((s) => s.name === name)?.datatype;
    const decoded = decodeClientTensor({ name, datatype, shape: item.shape ?? inferShape(item.data), data: item.data }, signature);
    const type = DATATYPE_TO_TENSOR_TYPE[decoded.datatype]!;
    out[name] =
      type === 'string'
        ? new Tensor('string', decoded.values as string[], decoded.dims)
        : new Tensor(type, decoded.values as TypedArray, decoded.dims);
  }
  checkNoneMissing(Object.keys(out), signature);
  return out;
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
