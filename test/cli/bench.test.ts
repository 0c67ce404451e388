import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import type { BenchReport, LevelResult } from '../../packages/cli/src/commands/bench/report-types.js';
import { KILN_BIN, REPO_ROOT, tempDir, type KilnRun } from '../support/kiln.js';
import { linearArchive, startKiln } from '../support/server.js';

/** Runs `kiln bench` without blocking this process, so a server started by the test keeps answering. */
function bench(args: string[]): Promise<KilnRun> {
  const child = spawn(process.execPath, [KILN_BIN, 'bench', ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.on('exit', (status) => resolve({ status, stdout, stderr })));
}

function readReport(dir: string): BenchReport {
  return JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as BenchReport;
}

/** A loopback port that was free a moment ago, with nothing listening on it now. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const sum = (values: Iterable<number>) => [...values].reduce((a, b) => a + b, 0);

/** What must hold in every level of every report, whatever the server did. */
function expectConsistent(level: LevelResult): void {
  expect(level.requests).toBe(level.successes + sum(Object.values(level.errors)));
  const l = level.latencyMs!;
  expect(l.p50).toBeGreaterThan(0);
  expect(l.p50).toBeLessThanOrEqual(l.p90);
  expect(l.p90).toBeLessThanOrEqual(l.p99);
  expect(l.p99).toBeLessThanOrEqual(l.max);
  expect(level.throughput).toBeCloseTo(level.successes / level.durationS, 6);
  const server = level.server!;
  expect(server.batches).toBe(sum(Object.values(server.batchSizes)));
  // Every request the client sent went in exactly one batch, and the server answered each.
  expect(sum(Object.entries(server.batchSizes).map(([size, n]) => Number(size) * n))).toBe(level.requests);
  expect(server.requests).toEqual({ ...(level.successes > 0 ? { 200: level.successes } : {}), ...level.errors });
  expect(server.meanBatchSize).toBeCloseTo(level.requests / server.batches, 9);
}

describe('kiln bench', () => {
  test('serves an archive itself, and its report agrees with itself and with the server: requests, percentiles, batches', async () => {
    const dir = tempDir();
    const archive = linearArchive(dir, 'linear', 'batchSize: 8\nmaxBatchDelay: 5\n');
    const run = await bench([archive, '--requests', '300', '-c', '1,8', '--warmup', '0.2', '--report', join(dir, 'report')]);
    expect(run.stderr).toContain(`report written to ${join(dir, 'report', 'report.html')}`);
    expect(run.status).toBe(0);

    const report = readReport(join(dir, 'report'));
    expect(report.target).toMatchObject({ kind: 'archive', archive, model: 'linear' });
    expect(report.input).toMatchObject({ source: 'generated', description: expect.stringContaining('x FP32 [1, 4]') });
    expect(report.settings).toMatchObject({ concurrency: [1, 8], requests: 300, warmupS: 0.2 });
    expect(report.levels.map((l) => [l.concurrency, l.requests, l.successes, l.errors])).toEqual([
      [1, 300, 300, {}],
      [8, 300, 300, {}],
    ]);
    report.levels.forEach(expectConsistent);
    const [c1, c8] = report.levels as [LevelResult, LevelResult];
    // At c=1 each request is alone; at c=8 they share batches (batchSize 8).
    expect(c1.server!.batchSizes).toEqual({ 1: 300 });
    expect(c8.server!.meanBatchSize).toBeGreaterThan(1);
    expect(Math.max(...Object.keys(c8.server!.batchSizes).map(Number))).toBeLessThanOrEqual(8);
    // The handler extends BaseHandler, so each phase was timed, inside the batch's round trip.
    const phases = c8.server!.batchMs!;
    expect(phases.preprocess! + phases.inference! + phases.postprocess!).toBeLessThan(phases.total);
    expect(c8.server!.queueMs).toBeGreaterThan(0);

    // The terminal table and report.md show the same figures.
    expect(run.stdout).toMatch(/^\s*8\s+300\s+0\s/m);
    const markdown = readFileSync(join(dir, 'report', 'report.md'), 'utf8');
    expect(markdown).toContain(`| 8 | 300 | 300 | 0 | ${c8.throughput.toFixed(1)} |`);
    const html = readFileSync(join(dir, 'report', 'report.html'), 'utf8');
    expect(html.match(/data-chart="/g)).toHaveLength(3);
  });

  test("against a running server, the batches it reports add up to the server's own count", async () => {
    const dir = tempDir();
    const kiln = await startKiln(['--models', `linear=${linearArchive(dir, 'linear', 'batchSize: 4\nmaxBatchDelay: 2\n')}`]);
    const raw = join(dir, 'row.f32');
    writeFileSync(raw, Buffer.from(new Float32Array([1, 2, 3, 4]).buffer));
    const run = await bench([
      kiln.inference,
      '--model',
      'linear',
      '--metrics-url',
      `${kiln.metrics}/metrics`,
      '--input',
      raw,
      '-n',
      '200',
      '-c',
      '2,6',
      '--warmup',
      '0',
      '--report',
      join(dir, 'report'),
    ]);
    expect(run.status).toBe(0);
    const report = readReport(join(dir, 'report'));
    expect(report.target).toMatchObject({ kind: 'url', url: kiln.inference, model: 'linear', metricsUrl: `${kiln.metrics}/metrics` });
    expect(report.input).toMatchObject({ source: 'file', file: raw, description: 'row.f32: raw FP32 [1, 4] for x' });
    report.levels.forEach(expectConsistent);

    // With no warm-up, every batch the server ever ran belongs to one of the levels.
    const metrics = await (await fetch(`${kiln.metrics}/metrics`)).text();
    const serverBatches = sum([...metrics.matchAll(/^kiln_batches_total\{model_name="linear".*\} (\d+)$/gm)].map((m) => Number(m[1])));
    expect(serverBatches).toBeGreaterThan(0);
    expect(sum(report.levels.map((l) => l.server!.batches))).toBe(serverBatches);
    expect(metrics).toContain(`kiln_requests_total{model_name="linear",model_version="1.0",status="200",error_code="",api="v2"} 400`);
  });

  test('errors are counted by status; a level where nothing succeeds still writes its report, then exits 1', async () => {
    const dir = tempDir();
    const archive = linearArchive(dir, 'linear', 'batchSize: 1\n');
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ row: [1, 2] }));
    const run = await bench([
      archive,
      '--protocol',
      'torchserve',
      '--input',
      bad,
      '-n',
      '50',
      '-c',
      '3',
      '--warmup',
      '0',
      '--report',
      join(dir, 'r'),
    ]);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('KILN_ERR_BENCH_FAILED');
    expect(run.stderr).toContain('no request succeeded at concurrency 3: 50× 400');
    const [level] = readReport(join(dir, 'r')).levels as [LevelResult];
    expect(level).toMatchObject({ requests: 50, successes: 0, errors: { 400: 50 }, latencyMs: null, throughput: 0 });
    expect(level.server!.requests).toEqual({ 400: 50 });
    expect(readReport(join(dir, 'r')).warnings).toContain('concurrency 3: 50 of 50 requests failed (50× 400)');
  });

  test('the grpc protocol sends ModelInfer with raw tensors to the gRPC API it starts, and the server batches the same requests', async () => {
    const dir = tempDir();
    const archive = linearArchive(dir, 'linear', 'batchSize: 4\nmaxBatchDelay: 2\n');
    const run = await bench([archive, '--protocol', 'grpc', '-n', '300', '-c', '1,4', '--warmup', '0.2', '--report', join(dir, 'r')]);
    expect(run.status).toBe(0);
    const report = readReport(join(dir, 'r'));
    expect(report.protocol).toBe('grpc');
    expect(report.target).toMatchObject({ kind: 'archive', model: 'linear', grpcAddress: expect.stringMatching(/^127\.0\.0\.1:\d+$/) });
    // One FP32 [1, 4] input: 16 raw bytes.
    expect(report.input).toMatchObject({ source: 'generated', bytes: 16, description: expect.stringContaining('x FP32 [1, 4]') });
    expect(report.levels.map((l) => [l.concurrency, l.requests, l.successes, l.errors])).toEqual([
      [1, 300, 300, {}],
      [4, 300, 300, {}],
    ]);
    for (const level of report.levels) {
      const server = level.server!;
      // Every ModelInfer went in exactly one batch.
      expect(sum(Object.entries(server.batchSizes).map(([size, n]) => Number(size) * n))).toBe(level.requests);
      expect(level.latencyMs!.p50).toBeGreaterThan(0);
    }
    expect(report.levels[0]!.server!.batchSizes).toEqual({ 1: 300 });
    expect(report.warnings).toContain(
      'the server counts gRPC requests in its batches but not in kiln_requests_total: its requests by status stay empty',
    );
  });

  test('grpc against a running server goes to --grpc-address; a gRPC failure counts by its status name', async () => {
    const dir = tempDir();
    const kiln = await startKiln(['--models', `linear=${linearArchive(dir, 'linear', 'batchSize: 2\nmaxBatchDelay: 2\n')}`]);
    const common = ['--model', 'linear', '--protocol', 'grpc', '-n', '100', '-c', '2', '--warmup', '0'];
    const run = await bench([
      kiln.inference,
      ...common,
      '--grpc-address',
      kiln.grpc!,
      '--metrics-url',
      `${kiln.metrics}/metrics`,
      '--report',
      join(dir, 'r'),
    ]);
    expect(run.status).toBe(0);
    const report = readReport(join(dir, 'r'));
    expect(report.target).toMatchObject({ kind: 'url', url: kiln.inference, grpcAddress: kiln.grpc });
    const [level] = report.levels as [LevelResult];
    expect(level).toMatchObject({ requests: 100, successes: 100, errors: {} });
    expect(sum(Object.entries(level.server!.batchSizes).map(([size, n]) => Number(size) * n))).toBe(100);

    const closed = await closedPort();
    const refused = await bench([
      kiln.inference,
      ...common,
      '--grpc-address',
      `127.0.0.1:${closed}`,
      '-n',
      '10',
      '--report',
      join(dir, 'x'),
    ]);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain('no request succeeded at concurrency 2: 10× grpc-UNAVAILABLE');
  });

  test('the torchserve protocol sends a file as it is, with its content type', async () => {
    const dir = tempDir();
    const archive = linearArchive(dir, 'linear', 'batchSize: 1\n');
    const good = join(dir, 'row.json');
    writeFileSync(good, JSON.stringify({ row: [1, 2, 3, 4] }));
    const run = await bench([
      archive,
      '--protocol',
      'torchserve',
      '--input',
      good,
      '-n',
      '20',
      '-c',
      '1',
      '--warmup',
      '0',
      '--report',
      join(dir, 'r'),
    ]);
    expect(run.status).toBe(0);
    const report = readReport(join(dir, 'r'));
    expect(report.input).toMatchObject({ source: 'file', bytes: readFileSync(good).length, description: 'row.json as application/json' });
    expect(report.levels[0]).toMatchObject({ requests: 20, successes: 20 });
  });

  test('bad usage and unreachable targets get a clear error and the right exit code', async () => {
    const noModel = await bench(['http://127.0.0.1:8080', '-n', '1']);
    expect(noModel.status).toBe(2);
    expect(noModel.stderr).toContain('KILN_ERR_USAGE');
    expect(noModel.stderr).toContain('--model is required with a server URL');

    const both = await bench(['http://127.0.0.1:8080', '--model', 'm', '-n', '1', '-d', '1']);
    expect(both.status).toBe(2);
    expect(both.stderr).toContain('--duration and --requests both end a level: give one of them');

    const badLevels = await bench(['http://127.0.0.1:8080', '--model', 'm', '-c', '1,zero']);
    expect(badLevels.status).toBe(2);
    const grpcAddress = await bench(['http://127.0.0.1:8080', '--model', 'm', '--grpc-address', '127.0.0.1:8085']);
    expect(grpcAddress.status).toBe(2);
    expect(grpcAddress.stderr).toContain('--grpc-address is where --protocol grpc sends its requests');

    expect(badLevels.stderr).toContain('--concurrency must be a comma-separated list of client counts, e.g. 1,4,16,64, received "zero"');

    const closed = await closedPort();
    const unreachable = await bench([`http://127.0.0.1:${closed}`, '--model', 'm', '-n', '1']);
    expect(unreachable.status).toBe(1);
    expect(unreachable.stderr).toContain('KILN_ERR_BENCH_TARGET');
    expect(unreachable.stderr).toContain(`could not reach http://127.0.0.1:${closed} (ECONNREFUSED)`);
    expect(existsSync(join(REPO_ROOT, 'report.json'))).toBe(false);
  });
});
