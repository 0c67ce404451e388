import { describe, expect, test } from 'vitest';
import type { Signature } from '@kiln/handler-sdk/runtime';
import { encodeGrpcInferResponse, parseGrpcInferRequest } from './grpc-codec.js';

const signature: Signature = {
  inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 2] }],
  outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 2] }],
};

describe('parseGrpcInferRequest', () => {
  test('raw contents are used where they lie when aligned, and copied only when not', () => {
    const message = Buffer.alloc(64);
    const aligned = message.subarray(8, 16);
    new Float32Array(message.buffer, message.byteOffset + 8, 2).set([1.5, -2]);
    const unaligned = Buffer.alloc(64).subarray(9, 17);
    unaligned.set(aligned);
    const request = (raw: Buffer) => ({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2] }], raw_input_contents: [raw] });

    const inPlace = parseGrpcInferRequest(request(aligned), signature, { id: 'a' }).tensors.x!.data as Float32Array;
    expect([...inPlace]).toEqual([1.5, -2]);
    expect(inPlace.buffer).toBe(message.buffer);
    expect(inPlace.byteOffset).toBe(message.byteOffset + 8);

    const copied = parseGrpcInferRequest(request(unaligned), signature, { id: 'b' });
    expect([...(copied.tensors.x!.data as Float32Array)]).toEqual([1.5, -2]);
    expect((copied.tensors.x!.data as Float32Array).buffer).not.toBe(message.buffer);
    expect(copied.raw).toBe(true);
  });

  test('typed contents are checked value by value, in the field the datatype names', () => {
    const parsed = parseGrpcInferRequest(
      { id: 'r', inputs: [{ name: 'x', datatype: 'FP32', shape: [2], contents: { fp32_contents: [3, 4] } }] },
      signature,
      { id: 'r' },
    );
    expect(parsed).toMatchObject({ id: 'r', raw: false, outputs: undefined });
    expect(parsed.tensors.x).toEqual({ type: 'float32', data: new Float32Array([3, 4]), dims: [2] });
    expect(() => parseGrpcInferRequest({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2] }] }, signature, { id: '' })).toThrow(
      'input "x" needs contents.fp32_contents, or the request raw_input_contents',
    );
  });

  test('FP16 has no typed contents; raw and typed inputs do not mix', () => {
    expect(() =>
      parseGrpcInferRequest({ inputs: [{ name: 'h', datatype: 'FP16', shape: [1], contents: {} }] }, undefined, { id: '' }),
    ).toThrow('input "h" is FP16, which has no typed contents: send it in raw_input_contents');
    expect(() =>
      parseGrpcInferRequest(
        {
          inputs: [
            { name: 'x', datatype: 'FP32', shape: [1, 2], contents: { fp32_contents: [1, 2] } },
            { name: 'z', datatype: 'FP32', shape: [1] },
          ],
          raw_input_contents: [Buffer.alloc(8), Buffer.alloc(4)],
        },
        undefined,
        { id: '' },
      ),
    ).toThrow('input "x" sets contents while the request has raw_input_contents');
    expect(() =>
      parseGrpcInferRequest({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2] }], raw_input_contents: [] }, signature, { id: '' }),
    ).toThrow('input "x" needs contents.fp32_contents');
  });
});

describe('encodeGrpcInferResponse', () => {
  const outputs = [
    { name: 'y', datatype: 'FP32' as const, shape: [1, 2], data: new Float32Array([0.5, 1]) },
    { name: 'n', datatype: 'INT64' as const, shape: [1], data: new BigInt64Array([2n ** 60n]) },
  ];
  const model = { name: 'm', version: '1' };

  test('typed when the request was typed: 64-bit integers as exact decimal text', () => {
    const { message } = encodeGrpcInferResponse(outputs, { id: 'i', tensors: {}, outputs: undefined, raw: false }, model);
    expect(message.raw_output_contents).toEqual([]);
    expect(message.outputs).toEqual([
      { name: 'y', datatype: 'FP32', shape: [1, 2], contents: { fp32_contents: [0.5, 1] } },
      { name: 'n', datatype: 'INT64', shape: [1], contents: { int64_contents: ['1152921504606846976'] } },
    ]);
  });

  test('raw when the request was raw, or when an output is FP16; only the outputs asked for, in their order', () => {
    const raw = encodeGrpcInferResponse(outputs, { id: 'i', tensors: {}, outputs: ['n'], raw: true }, model).message;
    expect(raw.outputs).toEqual([{ name: 'n', datatype: 'INT64', shape: [1] }]);
    expect(raw.raw_output_contents[0]).toEqual(new Uint8Array(outputs[1]!.data.buffer));
    const half = { name: 'h', datatype: 'FP16' as const, shape: [1], data: new Uint16Array([0x3c00]) };
    const mixed = encodeGrpcInferResponse([...outputs, half], { id: '', tensors: {}, outputs: undefined, raw: false }, model).message;
    expect(mixed.outputs.every((o) => o.contents === undefined)).toBe(true);
    expect(mixed.raw_output_contents).toHaveLength(3);
  });
});
