import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { tempDir } from '../../../../../test/support/kiln.js';
import { benchRequest, type RequestOptions } from './bench-request.js';

const base: RequestOptions = {
  baseUrl: 'http://127.0.0.1:8080/',
  model: 'm',
  protocol: 'v2-binary',
  inputs: [
    { name: 'image', datatype: 'FP32', shape: [-1, 3, -1, -1] },
    { name: 'ids', datatype: 'INT64', shape: [-1, 2] },
    { name: 'text', datatype: 'BYTES', shape: [1] },
  ],
  shapes: { image: [1, 3, 2, 2] },
  headers: { authorization: 'Bearer t' },
};

/** Splits a v2 binary body into its JSON header and each input's bytes. */
function parts(body: Uint8Array, headerLength: number) {
  const header = JSON.parse(Buffer.from(body.subarray(0, headerLength)).toString()) as {
    inputs: { name: string; shape: number[]; datatype: string; parameters: { binary_data_size: number } }[];
    parameters: unknown;
  };
  let at = headerLength;
  const bytes = header.inputs.map((i) => Buffer.from(body.subarray(at, (at += i.parameters.binary_data_size))));
  return { header, bytes, end: at };
}

describe('the request kiln bench sends', () => {
  test('grpc: a ModelInferRequest whose raw_input_contents are exactly v2-binary bytes, headers as metadata', () => {
    const binary = benchRequest(base);
    const { header, bytes } = parts(binary.body, Number(binary.headers['inference-header-content-length']));
    const request = benchRequest({ ...base, protocol: 'grpc', grpcAddress: '127.0.0.1:8085' });
    expect(request.url).toBe('grpc://127.0.0.1:8085');
    expect(request.headers).toEqual({ authorization: 'Bearer t' });
    expect(request.grpc!.model_name).toBe('m');
    expect(request.grpc!.inputs).toEqual(header.inputs.map(({ name, datatype, shape }) => ({ name, datatype, shape })));
    expect(request.grpc!.raw_input_contents.map((b) => Buffer.from(b))).toEqual(bytes);
    const total = bytes.reduce((n, b) => n + b.length, 0);
    expect(request.input).toMatchObject({ source: 'generated', bytes: total });
    expect(request.body.length).toBe(total);
  });

  test("grpc, from a file: a single input's raw bytes go as they are", () => {
    const file = join(tempDir(), 'row.f32');
    const raw = Buffer.from(new Float32Array([1, 2, 3, 4]).buffer);
    writeFileSync(file, raw);
    const request = benchRequest({
      ...base,
      protocol: 'grpc',
      grpcAddress: 'h:1',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 4] }],
      shapes: {},
      file,
    });
    expect(request.grpc).toEqual({ model_name: 'm', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4] }], raw_input_contents: [raw] });
    expect(request.input).toMatchObject({ source: 'file', bytes: 16, description: 'row.f32: raw FP32 [1, 4] for x' });
  });

  test('v2-binary, generated: a header per input, then little-endian bytes; open dimensions from --shape or 1', () => {
    const request = benchRequest(base);
    expect(request.url).toBe('http://127.0.0.1:8080/v2/models/m/infer');
    expect(request.headers).toMatchObject({ authorization: 'Bearer t', 'content-type': 'application/octet-stream' });
    const { header, bytes, end } = parts(request.body, Number(request.headers['inference-header-content-length']));
    expect(end).toBe(request.body.length);
    expect(String(request.body.length)).toBe(request.headers['content-length']);
    expect(header.parameters).toEqual({ binary_data_output: true });
    expect(header.inputs.map((i) => [i.name, i.datatype, i.shape])).toEqual([
      ['image', 'FP32', [1, 3, 2, 2]],
      ['ids', 'INT64', [1, 2]],
      ['text', 'BYTES', [1]],
    ]);
    const image = new Float32Array(bytes[0]!.buffer.slice(bytes[0]!.byteOffset, bytes[0]!.byteOffset + bytes[0]!.length));
    expect(image).toHaveLength(12);
    expect(image.every((v) => v >= -1 && v < 1)).toBe(true);
    expect(new Set(image).size).toBeGreaterThan(6);
    expect(bytes[1]!.length).toBe(16);
    expect([bytes[1]!.readBigInt64LE(0), bytes[1]!.readBigInt64LE(8)].every((v) => v >= 0n && v < 10n)).toBe(true);
    expect(bytes[2]).toEqual(Buffer.from([4, 0, 0, 0, ...Buffer.from('kiln')]));
    // Past --shape, only batch dimensions were open: nothing was guessed.
    expect(request.warnings).toEqual([]);
    expect(request.input.description).toBe('image FP32 [1, 3, 2, 2], ids INT64 [1, 2], text BYTES [1]; pseudo-random values');
  });

  test('an input left with open dimensions past the batch gets 1 for each, and a warning that says how to set them', () => {
    const request = benchRequest({ ...base, shapes: {}, inputs: [base.inputs[0]!] });
    expect(request.warnings).toEqual([
      'input "image" has open dimensions [-1, 3, -1, -1]; 1 was sent for each. Set real ones with --shape image=N,3,N,N',
    ]);
  });

  test('v2-json and torchserve, generated: the same tensors as JSON, to their routes', () => {
    const json = benchRequest({ ...base, protocol: 'v2-json' });
    const sent = JSON.parse(Buffer.from(json.body).toString()) as { inputs: { name: string; shape: number[]; data: unknown[] }[] };
    expect(sent.inputs.map((i) => [i.name, i.shape, i.data.length])).toEqual([
      ['image', [1, 3, 2, 2], 12],
      ['ids', [1, 2], 2],
      ['text', [1], 1],
    ]);
    const torchserve = benchRequest({ ...base, protocol: 'torchserve' });
    expect(torchserve.url).toBe('http://127.0.0.1:8080/predictions/m');
    expect(Buffer.from(torchserve.body).toString()).toBe(Buffer.from(json.body).toString());
  });

  test('a v2 JSON file is sent as binary tensors with --protocol v2-binary, and as it is with v2-json', () => {
    const file = join(tempDir(), 'request.json');
    writeFileSync(file, JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [[0.5, -2]] }] }));
    const binary = benchRequest({ ...base, file });
    const { header, bytes } = parts(binary.body, Number(binary.headers['inference-header-content-length']));
    expect(header.inputs[0]).toMatchObject({ name: 'x', shape: [1, 2] });
    expect([bytes[0]!.readFloatLE(0), bytes[0]!.readFloatLE(4)]).toEqual([0.5, -2]);
    expect(binary.input).toMatchObject({ source: 'file', file, description: 'request.json, a v2 request sent as binary tensors' });
    const json = benchRequest({ ...base, file, protocol: 'v2-json' });
    expect(JSON.parse(Buffer.from(json.body).toString())).toEqual({
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [[0.5, -2]] }],
    });
  });

  test('mistakes are usage errors that say what to do', () => {
    expect(() => benchRequest({ ...base, shapes: { image: [1, 4, 2, 2] } })).toThrow(
      "--shape image=1,4,2,2 does not fit the input's shape [-1, 3, -1, -1]",
    );
    expect(() => benchRequest({ ...base, shapes: { img: [1] } })).toThrow(
      '--shape img=…: the model has no input "img"; its inputs: image, ids, text',
    );
    expect(() => benchRequest({ ...base, inputs: [] })).toThrow(
      'describes no inputs in its metadata, so none can be generated: pass --input FILE',
    );
    const raw = join(tempDir(), 'raw.bin');
    writeFileSync(raw, Buffer.alloc(8));
    expect(() => benchRequest({ ...base, file: raw })).toThrow('or the raw bytes of a model with one input');
    expect(() => benchRequest({ ...base, file: join(tempDir(), 'missing.json') })).toThrow('--input');
  });
});
