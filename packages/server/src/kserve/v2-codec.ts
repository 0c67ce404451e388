import { sdkError } from '@kiln/handler-sdk/errors';
import { isStackOverflow, tooDeep } from '../http/json-depth.js';
import {
  DATATYPE_TO_TENSOR_TYPE,
  checkNoneMissing,
  decodeClientTensor,
  inputSpec,
  jsonValues,
  type Signature,
  type TypedArray,
  type WireRequest,
  type WireTensor,
} from '@kiln/handler-sdk/runtime';

export interface V2Request {
  id: string | undefined;
  tensors: NonNullable<WireRequest['tensors']>;
  /** The outputs asked for, in order, each as binary or JSON; undefined: all, by `binaryDefault`. */
  outputs: { name: string; binary: boolean | undefined }[] | undefined;
  binaryDefault: boolean;
}

interface JsonInput {
  name?: unknown;
  shape?: unknown;
  datatype?: unknown;
  data?: unknown;
  parameters?: { binary_data_size?: unknown };
}

const bad = (message: string) => sdkError('KILN_ERR_BAD_REQUEST', message);

/**
 * Reads a v2 infer request (JSON, or JSON followed by binary tensors when
 * `Inference-Header-Content-Length` is given) and checks every input against the model's
 * signature before anything runs. Errors name the input, what was expected and what was received.
 */
export function parseV2Request(
  body: Buffer,
  headerLength: number | undefined,
  signature: Signature | undefined,
  options: { allowNonFinite?: boolean } = {},
): V2Request {
  try {
    return parseChecked(body, headerLength, signature, options);
  } catch (error) {
    // A part of the request nested deep enough to exhaust a recursion (data is flattened to a
    // bounded depth, but a shape or an output list may be quoted in a message): the client's doing.
    if (isStackOverflow(error)) throw tooDeep('the request');
    throw error;
  }
}

function parseChecked(
  body: Buffer,
  headerLength: number | undefined,
  signature: Signature | undefined,
  options: { allowNonFinite?: boolean },
): V2Request {
  if (headerLength !== undefined && (!Number.isInteger(headerLength) || headerLength < 0 || headerLength > body.length)) {
    throw bad(`Inference-Header-Content-Length must be a byte count within the body (${body.length} bytes), received ${headerLength}`);
  }
  const jsonEnd = headerLength ?? body.length;
  let json: { id?: unknown; inputs?: unknown; outputs?: unknown; parameters?: { binary_data_output?: unknown } };
  try {
    json = JSON.parse(body.subarray(0, jsonEnd).toString('utf8'));
  } catch (error) {
    throw bad(`the request is not JSON: ${(error as Error).message}`);
  }
  if (!Array.isArray(json?.inputs) || json.inputs.length === 0)
    throw bad('the request needs "inputs": a non-empty list of {name, shape, datatype, data}');
  let cursor = jsonEnd;
  const tensors: V2Request['tensors'] = {};
  for (const [i, input] of (json.inputs as JsonInput[]).entries()) {
    const name = input?.name;
    if (typeof name !== 'string') throw bad(`inputs[${i}] has no "name"`);
    if (name in tensors) throw bad(`input "${name}" is given twice`);
    const size = input.parameters?.binary_data_size;
    let bytes: Buffer | undefined;
    if (size !== undefined) {
      if (!Number.isInteger(size) || (size as number) < 0 || cursor + (size as number) > body.length) {
        throw bad(`input "${name}" declares binary_data_size ${JSON.stringify(size)}, but the body has ${body.length - cursor} bytes left`);
      }
      bytes = body.subarray(cursor, cursor + (size as number));
      cursor += size as number;
    } else if (!Array.isArray(input.data)) {
      inputSpec(name, signature);
      throw bad(`input "${name}" needs "data" (a flat or nested list) or parameters.binary_data_size`);
    }
    // Binary data is decoded as a view of the body where it is aligned (kserve/v2-body.ts places
    // the first tensor so), and copied only where a tensor starts off its element boundary.
    const decoded = decodeClientTensor({ name, datatype: input.datatype, shape: input.shape, data: input.data, bytes }, signature, options);
    tensors[name] = { type: DATATYPE_TO_TENSOR_TYPE[decoded.datatype]!, data: decoded.values, dims: decoded.dims };
  }
  if (cursor !== body.length)
    throw bad(`the body has ${body.length - cursor} bytes after the last binary input; check each binary_data_size`);
  checkNoneMissing(Object.keys(tensors), signature);
  return {
    id: typeof json.id === 'string' ? json.id : undefined,
    tensors,
    outputs: requestedOutputs(json.outputs, signature),
    binaryDefault: json.parameters?.binary_data_output === true,
  };
}

function requestedOutputs(outputs: unknown, signature: Signature | undefined): V2Request['outputs'] {
  if (outputs === undefined) return undefined;
  if (!Array.isArray(outputs)) throw bad('"outputs" must be a list of {name, parameters}');
  const names = signature?.outputs.map((o) => o.name);
  return outputs.map((o: { name?: unknown; parameters?: { binary_data?: unknown } }, i) => {
    if (typeof o?.name !== 'string') throw bad(`outputs[${i}] has no "name"`);
    if (names !== undefined && !names.includes(o.name))
      throw sdkError('KILN_ERR_INPUT_MISMATCH', `unknown output "${o.name}"; the model's outputs are: ${names.join(', ')}`);
    const binary = o.parameters?.binary_data;
    return { name: o.name, binary: typeof binary === 'boolean' ? binary : undefined };
  });
}

/**
 * Encodes the outputs a v2 client asked for, as JSON, or a JSON header followed by binary tensors
 * (`chunks`, views of the outputs' own memory, written after the header without concatenating).
 */
export function encodeV2Response(
  outputs: readonly WireTensor[],
  request: V2Request,
  model: { name: string; version: string },
): { header: Buffer; chunks: Uint8Array[] } {
  const chosen =
    request.outputs === undefined
      ? outputs.map((o) => ({ tensor: o, binary: request.binaryDefault }))
      : request.outputs.map((want) => ({
          tensor: outputs.find((o) => o.name === want.name),
          binary: want.binary ?? request.binaryDefault,
        }));
  const chunks: Uint8Array[] = [];
  const json = chosen.map(({ tensor, binary }, i) => {
    if (tensor === undefined) throw sdkError('KILN_ERR_HANDLER_FAILED', `the handler did not return output "${request.outputs![i]!.name}"`);
    const base = { name: tensor.name, datatype: tensor.datatype, shape: tensor.shape };
    if (!binary) return { ...base, data: jsonValues(tensor.datatype, tensor.data) };
    const bytes = toBinary(tensor);
    chunks.push(bytes);
    return { ...base, parameters: { binary_data_size: bytes.length } };
  });
  const header = Buffer.from(
    JSON.stringify({
      model_name: model.name,
      model_version: model.version,
      ...(request.id === undefined ? {} : { id: request.id }),
      outputs: json,
    }),
  );
  return { header, chunks };
}

/** A tensor's raw bytes (the binary extension's and gRPC's raw contents): a view of numeric data, BYTES length-prefixed. */
export function toBinary(tensor: WireTensor): Uint8Array {
  if (Array.isArray(tensor.data)) {
    const parts = (tensor.data as string[]).flatMap((s) => {
      const bytes = Buffer.from(s, 'utf8');
      const length = Buffer.alloc(4);
      length.writeUInt32LE(bytes.length);
      return [length, bytes];
    });
    return Buffer.concat(parts);
  }
  const data = tensor.data as TypedArray;
  if (tensor.datatype === 'BOOL' && !(data instanceof Uint8Array))
    return Buffer.from(Array.from(data as ArrayLike<unknown>, (v) => (v ? 1 : 0)));
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}
