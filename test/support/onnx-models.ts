/**
 * Builds small real ONNX models for tests. Every model here loads in onnxruntime-node, so a test
 * can both archive it and run it, and compare outputs with maths done by hand.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

export const ElemType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  COMPLEX64: 14,
} as const;

export interface ValueSpec {
  name: string;
  elemType: number;
  /** A number is a fixed dimension, a string a named dynamic one, null an unnamed dynamic one. */
  dims?: (number | string | null)[];
}

export interface InitializerSpec {
  name: string;
  dims: number[];
  floats: number[];
  /** Store the data in `location` (relative to the model) instead of inside the model. */
  external?: { location: string; offset?: number };
}

export interface ModelSpec {
  inputs: ValueSpec[];
  outputs: ValueSpec[];
  nodes: { opType: string; inputs: string[]; outputs: string[]; attributes?: Record<string, number | number[]> }[];
  /** Constant tensors (float, or int64 with `int64: true`), stored as initializers. */
  constants?: { name: string; dims: number[]; values: number[]; int64?: boolean }[];
  initializers?: InitializerSpec[];
  /** List initializers as graph inputs too, as IR < 4 exporters did. */
  initializersAsInputs?: boolean;
  opset?: number;
}

function valueInfo(spec: ValueSpec) {
  return onnx.ValueInfoProto.create({
    name: spec.name,
    type: {
      tensorType: {
        elemType: spec.elemType,
        ...(spec.dims === undefined
          ? {}
          : {
              shape: {
                dim: spec.dims.map((d) => (typeof d === 'number' ? { dimValue: d } : d === null ? {} : { dimParam: d })),
              },
            }),
      },
    },
  });
}

function floatBytes(values: number[]): Buffer {
  return Buffer.from(new Float32Array(values).buffer);
}

/**
 * Encodes the model. External initializers are written beside `dir` when given, at their
 * location; returns the model bytes.
 */
export function buildModel(spec: ModelSpec, dir?: string): Buffer {
  const externalFiles = new Map<string, Buffer[]>();
  const initializers = (spec.initializers ?? []).map((init) => {
    const data = floatBytes(init.floats);
    if (init.external === undefined) {
      return onnx.TensorProto.create({ name: init.name, dims: init.dims, dataType: ElemType.FLOAT, rawData: data });
    }
    const chunks = externalFiles.get(init.external.location) ?? [];
    const offset = init.external.offset ?? chunks.reduce((n, c) => n + c.length, 0);
    const pad = offset - chunks.reduce((n, c) => n + c.length, 0);
    if (pad > 0) chunks.push(Buffer.alloc(pad));
    chunks.push(data);
    externalFiles.set(init.external.location, chunks);
    return onnx.TensorProto.create({
      name: init.name,
      dims: init.dims,
      dataType: ElemType.FLOAT,
      dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      externalData: [
        { key: 'location', value: init.external.location },
        { key: 'offset', value: String(offset) },
        { key: 'length', value: String(data.length) },
      ],
    });
  });
  if (externalFiles.size > 0) {
    if (dir === undefined) throw new Error('buildModel: external initializers need a directory');
    for (const [location, chunks] of externalFiles) writeFileSync(join(dir, location), Buffer.concat(chunks));
  }
  const initializerInputs = spec.initializersAsInputs
    ? (spec.initializers ?? []).map((i) => ({ name: i.name, elemType: ElemType.FLOAT, dims: i.dims }))
    : [];
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'kiln-tests',
    opsetImport: [{ domain: '', version: spec.opset ?? 17 }],
    graph: {
      name: 'test',
      node: spec.nodes.map((n, i) =>
        onnx.NodeProto.create({
          name: `n${i}`,
          opType: n.opType,
          input: n.inputs,
          output: n.outputs,
          attribute: Object.entries(n.attributes ?? {}).map(([name, value]) =>
            Array.isArray(value)
              ? { name, type: onnx.AttributeProto.AttributeType.INTS, ints: value }
              : { name, type: onnx.AttributeProto.AttributeType.INT, i: value },
          ),
        }),
      ),
      initializer: [
        ...initializers,
        ...(spec.constants ?? []).map((c) =>
          c.int64
            ? onnx.TensorProto.create({
                name: c.name,
                dims: c.dims,
                dataType: ElemType.INT64,
                rawData: Buffer.from(BigInt64Array.from(c.values.map(BigInt)).buffer),
              })
            : onnx.TensorProto.create({ name: c.name, dims: c.dims, dataType: ElemType.FLOAT, rawData: floatBytes(c.values) }),
        ),
      ],
      input: [...spec.inputs, ...initializerInputs].map(valueInfo),
      output: spec.outputs.map(valueInfo),
    },
  });
  return Buffer.from(onnx.ModelProto.encode(model).finish());
}

/** Writes `buildModel(spec)` to `dir/name` and returns its path. */
export function writeModel(dir: string, name: string, spec: ModelSpec): string {
  const path = join(dir, name);
  writeFileSync(path, buildModel(spec, dir));
  return path;
}

/** y = x·W + b with W (4×3) and b (3) known, for a [batch, 4] FP32 input. Outputs `y` [batch, 3]. */
/** A model that answers each input unchanged as `<name>_out`, through Identity nodes: for round trips. */
export function echoModel(inputs: readonly ValueSpec[]): ModelSpec {
  return {
    inputs: inputs.map((i) => ({ ...i })),
    outputs: inputs.map((i) => ({ ...i, name: `${i.name}_out` })),
    nodes: inputs.map((i) => ({ opType: 'Identity', inputs: [i.name], outputs: [`${i.name}_out`] })),
  };
}

export const LINEAR_W = [1, 0, 2, -1, 0.5, 3, 0, 1, -2, 2, 1, 0.25];
export const LINEAR_B = [0.5, -1, 2];

export function linearModel(options: { external?: string; initializersAsInputs?: boolean } = {}): ModelSpec {
  const external = options.external === undefined ? undefined : { location: options.external };
  return {
    inputs: [{ name: 'x', elemType: ElemType.FLOAT, dims: ['batch', 4] }],
    outputs: [{ name: 'y', elemType: ElemType.FLOAT, dims: ['batch', 3] }],
    nodes: [
      { opType: 'MatMul', inputs: ['x', 'W'], outputs: ['xw'] },
      { opType: 'Add', inputs: ['xw', 'b'], outputs: ['y'] },
    ],
    initializers: [
      { name: 'W', dims: [4, 3], floats: LINEAR_W, ...(external ? { external } : {}) },
      { name: 'b', dims: [3], floats: LINEAR_B, ...(external ? { external } : {}) },
    ],
    initializersAsInputs: options.initializersAsInputs ?? false,
  };
}

/** The linear model's maths done by hand, for one row of 4. */
export function linearExpected(row: number[]): number[] {
  return [0, 1, 2].map((j) => row.reduce((sum, x, i) => sum + x * LINEAR_W[i * 3 + j]!, LINEAR_B[j]!));
}
