// The soak test's model: the linear model of test/support/onnx-models.ts (y = x·W + b, x [batch, 4],
// y [batch, 3]), built here in plain JavaScript so the soak runs without a TypeScript loader, and its
// maths done by hand so every answer can be checked.
import { writeFileSync } from 'node:fs';
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
const FLOAT = 1;

/** The same W (4×3) and b (3) as test/support/onnx-models.ts. */
export const LINEAR_W = [1, 0, 2, -1, 0.5, 3, 0, 1, -2, 2, 1, 0.25];
export const LINEAR_B = [0.5, -1, 2];

/** Writes the linear model to `path`. */
export function writeLinearModel(path) {
  const floats = (values) => Buffer.from(new Float32Array(values).buffer);
  const value = (name, dims) =>
    onnx.ValueInfoProto.create({
      name,
      type: {
        tensorType: { elemType: FLOAT, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } },
      },
    });
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'kiln-soak',
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'linear',
      node: [
        onnx.NodeProto.create({ name: 'n0', opType: 'MatMul', input: ['x', 'W'], output: ['xw'] }),
        onnx.NodeProto.create({ name: 'n1', opType: 'Add', input: ['xw', 'b'], output: ['y'] }),
      ],
      initializer: [
        onnx.TensorProto.create({ name: 'W', dims: [4, 3], dataType: FLOAT, rawData: floats(LINEAR_W) }),
        onnx.TensorProto.create({ name: 'b', dims: [3], dataType: FLOAT, rawData: floats(LINEAR_B) }),
      ],
      input: [value('x', ['batch', 4])],
      output: [value('y', ['batch', 3])],
    },
  });
  writeFileSync(path, onnx.ModelProto.encode(model).finish());
}

/**
 * What the model answers for one row of 4, as float32 values (the server computes in float32 and
 * sends them as JSON numbers). The rows the soak sends are small integers, so the sums are exact.
 * @param {number[]} row
 */
export function linearExpected(row) {
  return [0, 1, 2].map((j) => Math.fround(row.reduce((sum, x, i) => sum + x * LINEAR_W[i * 3 + j], LINEAR_B[j])));
}
