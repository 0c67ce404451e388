import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ElemType } from '../support/onnx-models.js';
import { archiveModel, startKiln, type RunningKiln } from '../support/server.js';

const WIDTH = 8192; // 32 KiB of FP32 per request: its body is a buffer of its own

/** y = x + 1, answered with the request's own input beside it (fixtures/handlers/echo-input.ts). */
const plusOne = {
  inputs: [{ name: 'x', elemType: ElemType.FLOAT, dims: ['n', WIDTH] }],
  outputs: [{ name: 'y', elemType: ElemType.FLOAT, dims: ['n', WIDTH] }],
  nodes: [{ opType: 'Add', inputs: ['x', 'one'], outputs: ['y'] }],
  initializers: [{ name: 'one', dims: [1], floats: [1] }],
};

function binaryRequest(values: Float32Array): { body: Buffer; headers: Record<string, string> } {
  const header = Buffer.from(
    JSON.stringify({
      inputs: [{ name: 'x', shape: [1, WIDTH], datatype: 'FP32', parameters: { binary_data_size: values.byteLength } }],
      parameters: { binary_data_output: true },
    }),
  );
  return {
    body: Buffer.concat([header, Buffer.from(values.buffer)]),
    headers: { 'inference-header-content-length': String(header.length) },
  };
}

/** The outputs of a binary v2 answer, by name. */
async function binaryOutputs(response: Response): Promise<Record<string, Float32Array>> {
  const bytes = Buffer.from(await response.arrayBuffer());
  const n = Number(response.headers.get('inference-header-content-length'));
  const outputs = (JSON.parse(bytes.subarray(0, n).toString()) as { outputs: { name: string; parameters: { binary_data_size: number } }[] })
    .outputs;
  const parts: Record<string, Float32Array> = {};
  let at = n;
  for (const o of outputs) {
    const raw = bytes.subarray(at, at + o.parameters.binary_data_size);
    parts[o.name] = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
    at += raw.length;
  }
  return parts;
}

// Thread workers give each request's body back after its batch, and the next body is read into
// it (packages/server/src/pool/lent-buffers.ts). Overlapping requests with different values show
// that no answer is ever overwritten by a later request, including answers that point into their
// own request's memory.
describe.each(['thread', 'process'] as const)('%s workers: request memory reused across requests', (isolation) => {
  let kiln: RunningKiln;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kiln-memory-'));
    const mar = archiveModel(dir, {
      name: 'plus',
      model: plusOne,
      handler: 'echo-input',
      config: `batchSize: 4\nmaxBatchDelay: 5\nminWorkers: 2\nisolation: ${isolation}\n`,
    });
    kiln = await startKiln(['--models', `plus=${mar}`], { shared: true });
  });
  afterAll(async () => {
    await kiln?.stop('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  test("every answer carries its own request's values, alone or batched", async () => {
    const send = async (k: number) => {
      const values = Float32Array.from({ length: WIDTH }, (_, i) => k * 1000 + (i % 97));
      const { body, headers } = binaryRequest(values);
      const response = await fetch(`${kiln.inference}/v2/models/plus/infer`, { method: 'POST', body, headers });
      expect(response.status).toBe(200);
      const { y, echo } = await binaryOutputs(response);
      expect(echo).toEqual(values);
      expect(y).toEqual(values.map((v) => v + 1));
    };
    // Waves of 12 overlapping requests (batches of up to 4), then some one at a time (batches of 1).
    for (let wave = 0; wave < 4; wave++) await Promise.all(Array.from({ length: 12 }, (_, i) => send(wave * 12 + i)));
    for (let k = 100; k < 106; k++) await send(k);
  });
});
