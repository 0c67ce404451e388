import { describe, expect, test } from 'vitest';
import { tempDir } from '../support/kiln.js';
import { linearExpected } from '../support/onnx-models.js';
import { linearArchive, post, startKiln } from '../support/server.js';

const y = (row: number[]) => linearExpected(row).map(Math.fround);

/** A model store with linear, alpha and beta; linear is loaded at start. */
function store(): string {
  const dir = tempDir();
  linearArchive(dir, 'linear', 'batchSize: 1\n', 'linear', '1');
  linearArchive(dir, 'linear', 'batchSize: 1\n', 'alpha', '1');
  linearArchive(dir, 'linear', 'batchSize: 1\n', 'beta', '3');
  return dir;
}

const start = (dir: string, extra: string[] = []) =>
  startKiln(['--model-store', 'store', '--models', 'linear=linear.mar', ...extra], { cwd: dir });

describe("Triton's model repository extension", () => {
  test('is off without --enable-model-api, and says how to turn it on', async () => {
    const kiln = await start(store());
    for (const path of ['/v2/repository/index', '/v2/repository/models/alpha/load', '/v2/repository/models/linear/unload']) {
      const answer = await post(`${kiln.inference}${path}`, {});
      expect(answer.status).toBe(405);
      expect(String(answer.json.error)).toContain('--enable-model-api');
    }
    // Nothing was unloaded.
    expect((await post(`${kiln.inference}/predictions/linear`, { row: [1, 2, 3, 4] })).json).toMatchObject({ y: y([1, 2, 3, 4]) });
  });

  test('index, load and unload over the model store', async () => {
    const kiln = await start(store(), ['--enable-model-api']);
    const index = await post(`${kiln.inference}/v2/repository/index`, '');
    expect(index.status).toBe(200);
    expect(index.json).toEqual([
      { name: 'alpha', version: '', state: 'UNAVAILABLE', reason: 'unloaded' },
      { name: 'beta', version: '', state: 'UNAVAILABLE', reason: 'unloaded' },
      { name: 'linear', version: '1', state: 'READY', reason: '' },
    ]);
    expect((await post(`${kiln.inference}/v2/repository/index`, { ready: true })).json).toEqual([
      { name: 'linear', version: '1', state: 'READY', reason: '' },
    ]);

    // Load with no body, as tritonclient's load_model(name) sends it.
    const loaded = await fetch(`${kiln.inference}/v2/repository/models/alpha/load`, { method: 'POST' });
    expect(loaded.status).toBe(200);
    expect((await fetch(`${kiln.inference}/v2/models/alpha/ready`)).status).toBe(200);
    const inferred = await post(`${kiln.inference}/v2/models/alpha/infer`, {
      inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: [4, 3, 2, 1] }],
      outputs: [{ name: 'y' }],
    });
    expect(inferred.json).toMatchObject({ model_name: 'alpha', outputs: [{ name: 'y', shape: [1, 3], data: y([4, 3, 2, 1]) }] });

    // A Triton model configuration: max_batch_size, the queue delay and the instance counts are taken.
    const config = {
      name: 'beta',
      max_batch_size: 4,
      dynamic_batching: { max_queue_delay_microseconds: 3000 },
      instance_group: [{ count: 1 }, { count: 1 }],
    };
    expect(
      (await post(`${kiln.inference}/v2/repository/models/beta/load`, { parameters: { config: JSON.stringify(config) } })).status,
    ).toBe(200);
    const beta = (await (await fetch(`${kiln.management}/models/beta`)).json()) as {
      batchSize: number;
      maxBatchDelay: number;
      workers: unknown[];
    }[];
    expect(beta[0]).toMatchObject({ batchSize: 4, maxBatchDelay: 3, workers: [expect.anything(), expect.anything()] });
    // Loading what is loaded changes nothing.
    expect((await post(`${kiln.inference}/v2/repository/models/beta/load`, {})).status).toBe(200);

    // What Kiln cannot do is refused by name.
    const upload = await post(`${kiln.inference}/v2/repository/models/gamma/load`, { parameters: { 'file:1/model.onnx': 'AAAA' } });
    expect(upload.status).toBe(400);
    expect(String(upload.json.error)).toContain('put the archive (kiln archive) in the model store');
    const field = await post(`${kiln.inference}/v2/repository/models/gamma/load`, { parameters: { config: '{"sequence_batching": {}}' } });
    expect(field.status).toBe(400);
    expect(String(field.json.error)).toContain('config field sequence_batching has no Kiln equivalent');
    const missing = await post(`${kiln.inference}/v2/repository/models/gamma/load`, {});
    expect(missing.status).toBe(404);
    expect(String(missing.json.error)).toContain("failed to load 'gamma': no gamma.mar, gamma.tar.gz, gamma.tgz or unpacked folder gamma");
    expect((await post(`${kiln.inference}/v2/repository/models/alpha/load`, '{"parameters": ')).status).toBe(400);

    // Unload: every version goes, and the index says so.
    expect((await post(`${kiln.inference}/v2/repository/models/alpha/unload`, '')).status).toBe(200);
    expect((await post(`${kiln.inference}/predictions/alpha`, { row: [1, 2, 3, 4] })).status).toBe(404);
    const again = await post(`${kiln.inference}/v2/repository/models/alpha/unload`, '');
    expect(again.status).toBe(404);
    expect(String(again.json.error)).toContain("Request for unknown model: 'alpha' is not loaded");
    expect((await post(`${kiln.inference}/v2/repository/index`, {})).json).toContainEqual({
      name: 'alpha',
      version: '',
      state: 'UNAVAILABLE',
      reason: 'unloaded',
    });
  });
});
