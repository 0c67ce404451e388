import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, test } from 'vitest';
import { ElemType, linearModel, writeModel, type ModelSpec } from '../../../../test/support/onnx-models.js';
import { NotAModelError, readOnnxModel } from './read-signature.js';

const dir = mkdtempSync(join(tmpdir(), 'kiln-sig-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
const write = (spec: ModelSpec) => writeModel(dir, `m${n++}.onnx`, spec);

describe('readOnnxModel', () => {
  test('reads names, datatypes and shapes, with -1 for named and unnamed dynamic dimensions', async () => {
    const path = write({
      inputs: [
        { name: 'image', elemType: ElemType.FLOAT, dims: ['batch', 3, null, 224] },
        { name: 'ids', elemType: ElemType.INT64, dims: [1, 'seq'] },
        { name: 'anything', elemType: ElemType.UINT8 },
      ],
      outputs: [
        { name: 'out_image', elemType: ElemType.FLOAT, dims: ['batch', 3, null, 224] },
        { name: 'out_ids', elemType: ElemType.INT64, dims: [1, 'seq'] },
        { name: 'out_any', elemType: ElemType.UINT8 },
      ],
      nodes: [
        { opType: 'Identity', inputs: ['image'], outputs: ['out_image'] },
        { opType: 'Identity', inputs: ['ids'], outputs: ['out_ids'] },
        { opType: 'Identity', inputs: ['anything'], outputs: ['out_any'] },
      ],
    });
    const { signature, externalData } = readOnnxModel(path);
    expect(signature.inputs).toEqual([
      { name: 'image', datatype: 'FP32', shape: [-1, 3, -1, 224] },
      { name: 'ids', datatype: 'INT64', shape: [1, -1] },
      { name: 'anything', datatype: 'UINT8' },
    ]);
    expect(signature.outputs.map((o) => o.name)).toEqual(['out_image', 'out_ids', 'out_any']);
    expect(externalData).toEqual([]);

    // ONNX Runtime reads the same model the same way.
    const session = await ort.InferenceSession.create(path);
    expect(session.inputNames).toEqual(signature.inputs.map((i) => i.name));
    expect(session.outputNames).toEqual(signature.outputs.map((o) => o.name));
  });

  test('maps every datatype Kiln serves', () => {
    const types = { BOOL: ElemType.BOOL, FP16: ElemType.FLOAT16, FP64: ElemType.DOUBLE, INT32: ElemType.INT32, BYTES: ElemType.STRING };
    for (const [datatype, elemType] of Object.entries(types)) {
      const path = write({
        inputs: [{ name: 'a', elemType, dims: [2] }],
        outputs: [{ name: 'b', elemType, dims: [2] }],
        nodes: [{ opType: 'Identity', inputs: ['a'], outputs: ['b'] }],
      });
      expect(readOnnxModel(path).signature.inputs[0]!.datatype).toBe(datatype);
    }
  });

  test('leaves out graph inputs that are initializers (IR < 4 exporters list weights as inputs)', () => {
    const path = write(linearModel({ initializersAsInputs: true }));
    expect(readOnnxModel(path).signature.inputs).toEqual([{ name: 'x', datatype: 'FP32', shape: [-1, 4] }]);
  });

  test('lists external-data references with their offsets', () => {
    const path = write(linearModel({ external: 'weights.bin' }));
    expect(readOnnxModel(path).externalData).toEqual([
      { tensor: 'W', location: 'weights.bin', offset: 0, length: 48 },
      { tensor: 'b', location: 'weights.bin', offset: 48, length: 12 },
    ]);
  });

  test('reads a model with large weights without reading the weights', () => {
    const floats = new Array(4 * 1024 * 1024).fill(0.5); // 16 MiB of weights
    const path = write({
      ...linearModel(),
      initializers: [
        { name: 'W', dims: [4, 3], floats: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0] },
        { name: 'b', dims: [3], floats: [0, 0, 0] },
        { name: 'unused', dims: [floats.length], floats },
      ],
    });
    const before = process.memoryUsage().rss;
    expect(readOnnxModel(path).signature.outputs).toEqual([{ name: 'y', datatype: 'FP32', shape: [-1, 3] }]);
    expect(process.memoryUsage().rss - before).toBeLessThan(8 * 1024 * 1024);
  });

  test.each([
    ['empty', Buffer.alloc(0), 'the file is empty'],
    ['text', Buffer.from('{"not": "onnx"}'), 'not protobuf-encoded ONNX'],
    ['protobuf without a graph', Buffer.from([0x08, 0x08]), 'it has no graph'],
    ['a truncated graph', Buffer.from([0x3a, 0x20, 0x0a]), 'overruns'],
  ])('refuses %s', (_name, bytes, message) => {
    const path = join(dir, `bad${n++}.onnx`);
    writeFileSync(path, bytes);
    expect(() => readOnnxModel(path)).toThrow(NotAModelError);
    expect(() => readOnnxModel(path)).toThrow(message);
  });
});
