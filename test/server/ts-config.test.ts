import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, onTestFinished, test } from 'vitest';
import { spawnKiln, tempDir } from '../support/kiln.js';
import { linearExpected } from '../support/onnx-models.js';
import { linearArchive, post } from '../support/server.js';

/**
 * Starts the real `kiln serve` with no address flags, so that the addresses come from the
 * config.properties (port 0 there), and waits until it is ready.
 */
async function serve(args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv }) {
  const child = spawnKiln(['serve', ...args], options);
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  onTestFinished(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const deadline = Date.now() + 30_000;
  while (!/Kiln is ready/.test(output)) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`kiln serve did not get ready:\n${output}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const address = (api: string) => new RegExp(`${api} API listening on (http:\\/\\/[^\\s"]+)`).exec(output)![1]!;
  return { inference: address('inference'), management: address('management'), lines: () => output.split('\n') };
}

const y = (row: number[]) => linearExpected(row).map(Math.fround);

/** The log lines that mention `text`. */
const mentioning = (lines: string[], text: string) => lines.filter((line) => line.includes(text));

describe("kiln serve reads TorchServe's config.properties", () => {
  test('--ts-config: addresses, model_store, load_models and default_workers_per_model are used; an unsupported key is warned once', async () => {
    const dir = tempDir();
    linearArchive(dir, 'linear', 'batchSize: 1\n'); // no minWorkers: default_workers_per_model decides
    writeFileSync(
      join(dir, 'config.properties'),
      [
        '# As torchserve --start --ts-config config.properties reads it',
        'inference_address=http://127.0.0.1:0',
        'management_address: http://127.0.0.1:0',
        'metrics_address http://127.0.0.1:0',
        'model_store=store',
        'load_models=lin=linear.mar',
        'default_workers_per_model=2',
        'number_of_netty_threads=4',
        '',
      ].join('\n'),
    );
    const kiln = await serve(['--ts-config', 'config.properties'], { cwd: dir });

    const row = [1, -2, 0.5, 3];
    const answer = await post(`${kiln.inference}/predictions/lin`, { row });
    expect(answer.status).toBe(200);
    expect(answer.json).toMatchObject({ y: y(row) });

    const described = (await (await fetch(`${kiln.management}/models/lin`)).json()) as { modelName: string; workers: unknown[] }[];
    expect(described[0]).toMatchObject({ modelName: 'lin' });
    expect(described[0]!.workers).toHaveLength(2);

    const lines = kiln.lines();
    const warned = mentioning(lines, 'number_of_netty_threads');
    expect(warned).toHaveLength(1);
    // The tests' servers log in the pretty format (vitest.config.ts): a warning reads `WARN: ...`.
    expect(warned[0]).toContain(
      "WARN: config.properties: number_of_netty_threads is not used: Kiln's HTTP servers run on Node's event loop, with no thread pool to size",
    );
    // Logged at startup, before the APIs listen.
    expect(lines.indexOf(warned[0]!)).toBeLessThan(lines.findIndex((line) => line.includes('inference API listening')));
  });

  test('TS_CONFIG_FILE, with a KServe-style model_snapshot: its models load, and the keys Kiln leaves out are warned once each', async () => {
    const dir = tempDir();
    linearArchive(dir, 'linear', 'batchSize: 1\n');
    const snapshot = {
      name: 'startup.cfg',
      modelCount: 1,
      models: {
        snap: { '1.0': { defaultVersion: true, marName: 'linear.mar', minWorkers: 1, maxWorkers: 1, batchSize: 4, maxBatchDelay: 10 } },
      },
    };
    writeFileSync(
      join(dir, 'config.properties'),
      [
        'inference_address=http://127.0.0.1:0',
        'management_address=http://127.0.0.1:0',
        'metrics_address=http://127.0.0.1:0',
        'model_store=store',
        `model_snapshot=${JSON.stringify(snapshot)}`,
        'metrics_format=prometheus',
        'default_response_timeout=600',
        '',
      ].join('\n'),
    );
    const kiln = await serve([], { cwd: dir, env: { TS_CONFIG_FILE: 'config.properties' } });

    const row = [4, 3, 2, 1];
    expect((await post(`${kiln.inference}/predictions/snap`, { row })).json).toMatchObject({ y: y(row) });

    const lines = kiln.lines();
    expect(mentioning(lines, 'default_response_timeout')).toEqual([expect.stringContaining('set responseTimeout (seconds, default 120)')]);
    expect(mentioning(lines, 'model_snapshot')).toEqual([
      expect.stringContaining('its models are loaded (snap), but not their settings (minWorkers, maxWorkers, batchSize, maxBatchDelay)'),
    ]);
    expect(mentioning(lines, 'metrics_format')).toEqual([]);
  });
});
