import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { answer, catalogueServer, expectRefusal, expectStillServing } from '../support/catalogue.js';
import { ElemType, linearExpected } from '../support/onnx-models.js';
import { archiveModel, linearArchive } from '../support/server.js';

// linear: x FP32 [-1, 4] → y FP32 [-1, 3]; text: BYTES in, echoed; lenient: linear with allowNonFinite.
const server = catalogueServer({
  models: ['text=text.mar', 'lenient=lenient.mar'],
  prepare: (dir) => {
    archiveModel(dir, {
      name: 'text',
      model: {
        inputs: [{ name: 's', elemType: ElemType.STRING, dims: ['n', 1] }],
        outputs: [{ name: 's_out', elemType: ElemType.STRING, dims: ['n', 1] }],
        nodes: [{ opType: 'Identity', inputs: ['s'], outputs: ['s_out'] }],
      },
      handler: 'tensor',
      config: 'batchSize: 1\n',
    });
    linearArchive(dir, 'linear', 'batchSize: 1\nallowNonFinite: true\n', 'lenient');
  },
});
const MODELS = ['text', 'lenient'];

type Input = { name: string; shape: unknown; datatype: string; data?: unknown; parameters?: { binary_data_size: number } };

/** A v2 request: JSON inputs, then the binary ones' bytes after the JSON header. */
async function infer(model: string, inputs: Input[], binary: Buffer[] = []) {
  const header = Buffer.from(JSON.stringify({ inputs }));
  return answer(
    await fetch(`${server().kiln.inference}/v2/models/${model}/infer`, {
      method: 'POST',
      body: Buffer.concat([header, ...binary]),
      headers: binary.length > 0 ? { 'inference-header-content-length': String(header.length) } : {},
    }),
  );
}

const floats = (...values: number[]) => Buffer.from(new Float32Array(values).buffer);
const binaryX = (shape: unknown, bytes: Buffer): Input => ({
  name: 'x',
  shape,
  datatype: 'FP32',
  parameters: { binary_data_size: bytes.length },
});
const rssBytes = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${server().kiln.child.pid}/status`, 'utf8'))![1]) * 1024;

/** A BYTES element: its 4-byte little-endian length, then its bytes. */
const element = (text: string, claimed?: number) => {
  const bytes = Buffer.from(text);
  const length = Buffer.alloc(4);
  length.writeUInt32LE(claimed ?? bytes.length);
  return Buffer.concat([length, bytes]);
};

describe('tensors', () => {
  test.each([
    [
      'JSON',
      () => infer('linear', [{ name: 'x', shape: [1_000_000_000, 4], datatype: 'FP32', data: [1, 2, 3, 4] }]),
      'input "x" (FP32) has 4 values, but its shape holds 4000000000',
    ],
    [
      'binary',
      () => infer('linear', [binaryX([2_000_000_000, 4], floats(1, 2, 3, 4))], [floats(1, 2, 3, 4)]),
      'input "x" (FP32) has 16 bytes, but its shape needs 32000000000 (8000000000 × 4)',
    ],
  ])('a huge dimension (%s) is refused before anything is allocated for it', async (_, request, message) => {
    const before = rssBytes();
    expectRefusal(await request(), 400, 'KILN_ERR_BAD_REQUEST', message);
    expect(rssBytes() - before).toBeLessThan(64 * 1024 * 1024);
    await expectStillServing(server(), MODELS);
  });

  test('a negative dimension: 400 naming the shape', async () => {
    const got = await infer('linear', [{ name: 'x', shape: [-1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }]);
    expectRefusal(got, 400, 'KILN_ERR_BAD_REQUEST', 'input "x" needs "shape": a list of non-negative integers, received [-1,4]');
    await expectStillServing(server(), MODELS);
  });

  test('binary bytes that disagree with the shape: 400 with both counts', async () => {
    const got = await infer('linear', [binaryX([2, 4], floats(1, 2, 3, 4))], [floats(1, 2, 3, 4)]);
    expectRefusal(got, 400, 'KILN_ERR_BAD_REQUEST', 'input "x" (FP32) has 16 bytes, but its shape needs 32 (8 × 4)');
    await expectStillServing(server(), MODELS);
  });

  test('a BYTES length prefix that runs past the data: 400', async () => {
    const bytes = element('hello', 1_000);
    const got = await infer(
      'text',
      [{ name: 's', shape: [1, 1], datatype: 'BYTES', parameters: { binary_data_size: bytes.length } }],
      [bytes],
    );
    expectRefusal(got, 400, 'KILN_ERR_BAD_REQUEST', 'input "s" (BYTES): a BYTES element of 1000 bytes runs past the tensor\'s data');
    await expectStillServing(server(), MODELS);
  });

  test('a BYTES length prefix cut off: 400', async () => {
    const bytes = Buffer.concat([element('hi'), Buffer.from([1, 0])]);
    const got = await infer(
      'text',
      [{ name: 's', shape: [2, 1], datatype: 'BYTES', parameters: { binary_data_size: bytes.length } }],
      [bytes],
    );
    expectRefusal(got, 400, 'KILN_ERR_BAD_REQUEST', 'input "s" (BYTES): a BYTES element\'s 4-byte length is cut off');
    await expectStillServing(server(), MODELS);
  });

  test('well-formed BYTES are echoed (the model above is not broken)', async () => {
    const bytes = Buffer.concat([element('héllo'), element('')]);
    const got = await infer(
      'text',
      [{ name: 's', shape: [2, 1], datatype: 'BYTES', parameters: { binary_data_size: bytes.length } }],
      [bytes],
    );
    expect(got.status, got.text).toBe(200);
    expect((got.json.outputs as { data: string[] }[])[0]!.data).toEqual(['héllo', '']);
  });

  test.each([
    ['NaN', NaN, 'NaN'],
    ['+Infinity', Infinity, 'Infinity'],
    ['-Infinity', -Infinity, '-Infinity'],
  ])('binary FP32 %s is refused by default, naming the element', async (_, value, shown) => {
    const got = await infer('linear', [binaryX([1, 4], floats(1, 2, value, 4))], [floats(1, 2, value, 4)]);
    expectRefusal(
      got,
      400,
      'KILN_ERR_BAD_REQUEST',
      `input "x" (FP32): value 2 is ${shown}; send finite numbers, or set allowNonFinite: true`,
    );
    await expectStillServing(server(), MODELS);
  });

  test('a model with allowNonFinite takes NaN, and its NaN outputs come back as null in JSON', async () => {
    const got = await infer('lenient', [binaryX([1, 4], floats(1, NaN, 3, 4))], [floats(1, NaN, 3, 4)]);
    expect(got.status, got.text).toBe(200);
    const y = (got.json.outputs as { name: string; data: (number | null)[] }[]).find((o) => o.name === 'y')!.data;
    // y = xW + b: every output mixes x[1] in, except where W's row 1 is 0.
    const expected = linearExpected([1, NaN, 3, 4]).map((v) => (Number.isNaN(v) ? null : Math.fround(v)));
    expect(y).toEqual(expected);
    expect(y).toContain(null);
  });

  test.each([
    [
      '1e39 overflows FP32',
      '[1,2,3,1e39]',
      'input "x" (FP32): value 3 must be a finite number within ±3.4028234663852886e+38, received 1e+39',
    ],
    [
      '1e400 is read as Infinity by JSON',
      '[1,2,3,1e400]',
      'input "x" (FP32): value 3 must be a finite number within ±3.4028234663852886e+38, received Infinity',
    ],
    ['"NaN" as a string', '[1,2,3,"NaN"]', 'input "x" (FP32): value 3 must be a number, received "NaN"'],
  ])('JSON: %s: 400', async (_, data, message) => {
    const got = answer(
      await fetch(`${server().kiln.inference}/v2/models/linear/infer`, {
        method: 'POST',
        body: `{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":${data}}]}`,
      }),
    );
    expectRefusal(await got, 400, 'KILN_ERR_BAD_REQUEST', message);
    await expectStillServing(server(), MODELS);
  });

  test('an empty batch (dimension 0 is 0) is run and answered with empty outputs', async () => {
    const got = await infer('linear', [{ name: 'x', shape: [0, 4], datatype: 'FP32', data: [] }]);
    expect(got.status, got.text).toBe(200);
    expect((got.json.outputs as { name: string; shape: number[]; data: number[] }[]).find((o) => o.name === 'y')).toMatchObject({
      shape: [0, 3],
      data: [],
    });
    await expectStillServing(server(), MODELS);
  });

  test('one request with more rows than batchSize is run whole, as its own batch, never split', async () => {
    const rows = [
      [1, 2, 3, 4],
      [4, 3, 2, 1],
      [0, 0, 0, 1],
    ];
    const got = await infer('linear', [{ name: 'x', shape: [3, 4], datatype: 'FP32', data: rows.flat() }]);
    expect(got.status, got.text).toBe(200);
    const outputs = got.json.outputs as { name: string; shape: number[]; data: number[] }[];
    expect(outputs.find((o) => o.name === 'y')).toEqual({
      name: 'y',
      datatype: 'FP32',
      shape: [3, 3],
      data: rows.flatMap((r) => linearExpected(r).map(Math.fround)),
    });
    expect(outputs.find((o) => o.name === 'batch')!.data).toEqual([1]); // one request in the batch
  });
});
