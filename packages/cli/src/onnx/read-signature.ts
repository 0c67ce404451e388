import onnxProto from 'onnx-proto';
import type { onnx as OnnxTypes } from 'onnx-proto';
import { ONNX_ELEMENT_TYPES, ONNX_UNSUPPORTED_ELEMENT_TYPES, type Signature, type TensorSpec } from '@kiln/handler-sdk/runtime';
import { ProtoCursor, WireError } from './proto-cursor.js';

const { onnx } = onnxProto;

// Field numbers from onnx.proto.
const MODEL_GRAPH = 7;
const GRAPH_INITIALIZER = 5;
const GRAPH_INPUT = 11;
const GRAPH_OUTPUT = 12;
const TENSOR_NAME = 8;
const TENSOR_EXTERNAL_DATA = 13;
const TENSOR_DATA_LOCATION = 14;
const DATA_LOCATION_EXTERNAL = 1;

/** An initializer whose bytes live in another file, as `onnx.external_data_helper` writes them. */
export interface ExternalTensor {
  tensor: string;
  location: string;
  offset: number;
  length: number | undefined;
}

export interface OnnxModelInfo {
  signature: Signature;
  externalData: ExternalTensor[];
}

/** The model is not an ONNX ModelProto, or has something Kiln cannot describe. */
export class NotAModelError extends Error {}

/**
 * Reads the graph's inputs, outputs and external-data references from an ONNX file without
 * loading its weights: the walk seeks past initializer data, so memory stays flat for any size.
 * Graph inputs that are also initializers (IR < 4 models list weights as inputs) are left out.
 */
export function readOnnxModel(path: string): OnnxModelInfo {
  const cursor = new ProtoCursor(path);
  try {
    if (cursor.size === 0) throw new NotAModelError('the file is empty');
    let graph: { start: number; end: number } | undefined;
    while (cursor.pos < cursor.size) {
      const { field, wireType } = cursor.tag();
      if (field === MODEL_GRAPH && wireType === 2) {
        const length = cursor.length(cursor.size);
        graph = { start: cursor.pos, end: cursor.pos + length };
        cursor.pos = graph.end;
      } else {
        if (field === 0) throw new WireError(`field number 0 at byte ${cursor.pos}`);
        cursor.skip(wireType, cursor.size);
      }
    }
    if (graph === undefined) throw new NotAModelError('it has no graph (ModelProto field 7)');
    return readGraph(cursor, graph.start, graph.end);
  } catch (error) {
    if (error instanceof WireError) throw new NotAModelError(`it is not protobuf-encoded ONNX: ${error.message}`);
    throw error;
  } finally {
    cursor.close();
  }
}

function readGraph(cursor: ProtoCursor, start: number, end: number): OnnxModelInfo {
  const inputs: OnnxTypes.ValueInfoProto[] = [];
  const outputs: OnnxTypes.ValueInfoProto[] = [];
  const initializers = new Set<string>();
  const externalData: ExternalTensor[] = [];
  cursor.pos = start;
  while (cursor.pos < end) {
    const { field, wireType } = cursor.tag();
    if (wireType === 2 && (field === GRAPH_INPUT || field === GRAPH_OUTPUT)) {
      const info = onnx.ValueInfoProto.decode(cursor.bytes(cursor.length(end)));
      (field === GRAPH_INPUT ? inputs : outputs).push(info);
    } else if (wireType === 2 && field === GRAPH_INITIALIZER) {
      const length = cursor.length(end);
      const tensor = readInitializer(cursor, cursor.pos + length);
      initializers.add(tensor.name);
      if (tensor.external !== undefined) externalData.push(tensor.external);
    } else {
      cursor.skip(wireType, end);
    }
  }
  if (outputs.length === 0) throw new NotAModelError('its graph has no outputs');
  return {
    signature: {
      inputs: inputs.filter((input) => !initializers.has(input.name)).map(toTensorSpec),
      outputs: outputs.map(toTensorSpec),
    },
    externalData,
  };
}

/** Reads an initializer's name and external-data entries, seeking past its data. */
function readInitializer(cursor: ProtoCursor, end: number): { name: string; external?: ExternalTensor } {
  let name = '';
  let external = false;
  const entries = new Map<string, string>();
  while (cursor.pos < end) {
    const { field, wireType } = cursor.tag();
    if (field === TENSOR_NAME && wireType === 2) {
      name = cursor.bytes(cursor.length(end)).toString('utf8');
    } else if (field === TENSOR_DATA_LOCATION && wireType === 0) {
      external = cursor.varint() === DATA_LOCATION_EXTERNAL;
    } else if (field === TENSOR_EXTERNAL_DATA && wireType === 2) {
      const entry = onnx.StringStringEntryProto.decode(cursor.bytes(cursor.length(end)));
      entries.set(entry.key, entry.value);
    } else {
      cursor.skip(wireType, end);
    }
  }
  if (cursor.pos !== end) throw new WireError(`initializer "${name}" overruns its message`);
  if (!external) return { name };
  const location = entries.get('location');
  if (location === undefined) throw new NotAModelError(`initializer "${name}" is external but has no location`);
  const offset = Number(entries.get('offset') ?? 0);
  const length = entries.has('length') ? Number(entries.get('length')) : undefined;
  return { name, external: { tensor: name, location, offset, length } };
}

function toTensorSpec(info: OnnxTypes.IValueInfoProto): TensorSpec {
  const tensorType = info.type?.tensorType;
  if (tensorType == null) {
    const kind = info.type ? Object.keys(onnx.TypeProto.toObject(info.type as OnnxTypes.TypeProto))[0] : undefined;
    throw new NotAModelError(
      `"${info.name}" is a ${kind ?? 'value of unknown type'}, not a tensor; Kiln serves models whose inputs and outputs are tensors`,
    );
  }
  const elemType = tensorType.elemType ?? 0;
  const datatype = ONNX_ELEMENT_TYPES[elemType];
  if (datatype === undefined) {
    const onnxName = ONNX_UNSUPPORTED_ELEMENT_TYPES[elemType] ?? `element type ${elemType}`;
    throw new NotAModelError(`"${info.name}" has element type ${onnxName}, which Kiln cannot serve`);
  }
  const spec: TensorSpec = { name: info.name ?? '', datatype };
  if (tensorType.shape != null) {
    // dimValue has a prototype default of 0; the oneof getter says which member was really set.
    spec.shape = (tensorType.shape.dim ?? []).map((dim) =>
      (dim as OnnxTypes.TensorShapeProto.Dimension).value === 'dimValue' && dim.dimValue != null ? toNumber(dim.dimValue) : -1,
    );
  }
  return spec;
}

/** int64 fields decode to Long objects when protobufjs has Long, to numbers otherwise. */
function toNumber(value: number | { toNumber(): number }): number {
  return typeof value === 'number' ? value : value.toNumber();
}
