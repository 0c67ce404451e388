import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { tempDir } from '../support/kiln.js';
import { linearExpected } from '../support/onnx-models.js';
import { scrape, total } from '../support/scrape.js';
import { linearArchive, post, startKiln, until, type RunningKiln } from '../support/server.js';

// Known traffic against a real server, then /metrics and the v2 statistics read back: every count
// below follows from the requests sent, and the two endpoints must agree.

const linear = 'model_name="linear",model_version="1.0"';
const y = (row: number[]) => linearExpected(row).map(Math.fround);

describe('metrics after known traffic', () => {
  let kiln: RunningKiln;
  const dir = mkdtempSync(join(tmpdir(), 'kiln-metrics-'));
  const rows = [
    [1, 2, 3, 4], // sum 10
    [-1, 0, 0, 0], // -1
    [2, 0, 1, 0], // 3
  ];
  const concurrent = Array.from({ length: 8 }, (_, i) => [i, 1, 0, 0]); // sums 1..8

  beforeAll(async () => {
    const archive = linearArchive(dir, 'metered', 'batchSize: 4\nmaxBatchDelay: 50\n');
    kiln = await startKiln(
      ['--models', `linear=${archive}`, '--max-request-size', '2000', '--latency-buckets', '0.001', '0.01', '0.1', '1', '10'],
      { shared: true },
    );
    for (const row of rows) expect((await post(`${kiln.inference}/predictions/linear`, { row })).json).toMatchObject({ y: y(row) });
    const answers = await Promise.all(concurrent.map((row) => post(`${kiln.inference}/predictions/linear/1.0`, { row })));
    answers.forEach((a, i) => expect(a.json).toMatchObject({ y: y(concurrent[i]!) }));
    // One v2 request, then the refusals and the failure.
    const v2 = await post(`${kiln.inference}/v2/models/linear/infer`, {
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 1, 1, 1] }],
    });
    expect(v2.status).toBe(200);
    expect((await post(`${kiln.inference}/predictions/nosuchmodel`, { row: [1, 2, 3, 4] })).status).toBe(404);
    expect((await post(`${kiln.inference}/predictions/linear/9.9`, { row: [1, 2, 3, 4] })).status).toBe(404);
    expect((await post(`${kiln.inference}/predictions/linear`, { row: [1, 2, 3, 4], pad: 'x'.repeat(3000) })).status).toBe(413);
    const bad = await post(`${kiln.inference}/predictions/linear`, { row: [1, 2] });
    expect(bad).toMatchObject({ status: 400, json: { errorCode: 'KILN_ERR_BAD_REQUEST' } });
  });
  afterAll(async () => {
    await kiln?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('kiln_requests_total counts every request by status, error code and API, refusals included', async () => {
    const m = await scrape(kiln);
    expect(m.get(`kiln_requests_total{${linear},status="200",error_code="",api="torchserve"}`)).toBe(11);
    expect(m.get(`kiln_requests_total{${linear},status="200",error_code="",api="v2"}`)).toBe(1);
    expect(m.get(`kiln_requests_total{${linear},status="413",error_code="KILN_ERR_REQUEST_TOO_LARGE",api="torchserve"}`)).toBe(1);
    expect(m.get(`kiln_requests_total{${linear},status="400",error_code="KILN_ERR_BAD_REQUEST",api="torchserve"}`)).toBe(1);
    // A made-up name (or version) gets no series of its own: the labels stay empty.
    expect(
      m.get('kiln_requests_total{model_name="",model_version="",status="404",error_code="KILN_ERR_MODEL_NOT_FOUND",api="torchserve"}'),
    ).toBe(1);
    expect(
      m.get('kiln_requests_total{model_name="",model_version="",status="404",error_code="KILN_ERR_VERSION_NOT_FOUND",api="torchserve"}'),
    ).toBe(1);
    expect(total(m, 'kiln_requests_total')).toBe(16);
  });

  test('latency, queue and batch-size histograms hold one observation per request or batch, in their buckets', async () => {
    const m = await scrape(kiln);
    const reached = 13; // 11 + v2 + the bad row; the refused three never reached the queue
    for (const family of ['kiln_request_seconds', 'kiln_queue_seconds']) {
      expect(m.get(`${family}_count{${linear}}`)).toBe(reached);
      expect(m.get(`${family}_bucket{le="+Inf",${linear}}`)).toBe(reached);
      expect(m.get(`${family}_bucket{le="10",${linear}}`)).toBe(reached); // the configured buckets
      expect(m.get(`${family}_sum{${linear}}`)).toBeGreaterThan(0);
    }
    // Batch sizes: the exact counts and the histogram describe the same batches.
    const batches = total(m, 'kiln_batches_total', linear);
    const ones = m.get(`kiln_batches_total{${linear},batch_size="1"}`) ?? 0;
    expect(m.get(`kiln_batch_size_count{${linear}}`)).toBe(batches);
    expect(m.get(`kiln_batch_size_sum{${linear}}`)).toBe(reached);
    expect(m.get(`kiln_batch_size_bucket{le="1",${linear}}`)).toBe(ones);
    expect(m.get(`kiln_batch_size_bucket{le="4",${linear}}`)).toBe(batches); // batchSize 4
    expect(batches).toBeLessThan(reached); // the concurrent eight were batched
    for (const phase of ['preprocess', 'inference', 'postprocess', 'total'])
      expect(m.get(`kiln_batch_seconds_count{${linear},phase="${phase}"}`)).toBe(batches);
  });

  test("TorchServe's names count the same requests", async () => {
    const m = await scrape(kiln);
    expect(total(m, 'Requests2XX', 'Level="Host"')).toBe(12);
    expect(total(m, 'Requests4XX', 'Level="Host"')).toBe(4);
    expect(total(m, 'Requests5XX')).toBe(0);
    expect(total(m, 'ts_inference_requests_total', linear)).toBe(13);
    const queueUs = total(m, 'ts_queue_latency_microseconds', linear);
    expect(queueUs / 1e6).toBeCloseTo(m.get(`kiln_queue_seconds_sum{${linear}}`)!, 6);
    expect(total(m, 'ts_inference_latency_microseconds', linear) / 1e6).toBeCloseTo(m.get(`kiln_request_seconds_sum{${linear}}`)!, 6);
    expect(total(m, 'WorkerLoadTime', 'WorkerName="linear-1.0-w0"')).toBeGreaterThan(0);
  });

  test("the handler's own metrics appear with the model's labels and its buckets", async () => {
    const m = await scrape(kiln);
    // The JSON rows that got through preprocess: 3 + 8. The bad row threw before recording, and v2
    // tensors go to the model without preprocess.
    expect(m.get(`linear_rows_total{sign="positive",${linear}}`)).toBe(10);
    expect(m.get(`linear_rows_total{sign="negative",${linear}}`)).toBe(1);
    // Sums: 10, -1, 3, then 1..8 → ≤0: 1; ≤5: -1, 3 and 1..5, 7; ≤10: all 11.
    expect(m.get(`linear_row_sum_bucket{le="0",${linear}}`)).toBe(1);
    expect(m.get(`linear_row_sum_bucket{le="5",${linear}}`)).toBe(7);
    expect(m.get(`linear_row_sum_bucket{le="10",${linear}}`)).toBe(11);
    expect(m.get(`linear_row_sum_sum{${linear}}`)).toBe(10 - 1 + 3 + 36);
  });

  test('gauges: queue size, workers by state, worker memory; process metrics', async () => {
    const m = await scrape(kiln);
    expect(m.get(`kiln_queue_size{${linear}}`)).toBe(0);
    expect(m.get(`kiln_workers{${linear},state="idle"}`)).toBe(1);
    expect(m.get(`kiln_workers{${linear},state="busy"}`)).toBe(0);
    expect(m.get(`kiln_worker_memory_bytes{${linear},worker="linear-1.0-w0"}`)).toBeGreaterThan(0);
    expect(m.get(`kiln_worker_restarts_total{${linear}}`)).toBe(0);
    expect(m.get('process_resident_memory_bytes')).toBeGreaterThan(10e6);
  });

  test("?name[]= keeps only the families named (TorchServe's filter)", async () => {
    const text = await (await fetch(`${kiln.metrics}/metrics?name[]=Requests2XX&name[]=kiln_batch_size&name[]=nope`)).text();
    expect([...text.matchAll(/^# TYPE (\S+)/gm)].map((match) => match[1])).toEqual(['Requests2XX', 'kiln_batch_size']);
  });

  test('the v2 statistics agree with /metrics', async () => {
    const m = await scrape(kiln);
    const response = await fetch(`${kiln.inference}/v2/models/stats`);
    expect(response.status).toBe(200);
    type Duration = { count: number; ns: number };
    type Stats = {
      name: string;
      version: string;
      last_inference: number;
      inference_count: number;
      execution_count: number;
      inference_stats: Record<'success' | 'fail' | 'queue' | 'compute_input' | 'compute_infer' | 'compute_output' | 'cache_hit', Duration>;
      batch_stats: { batch_size: number; compute_infer: Duration }[];
    };
    const { model_stats } = (await response.json()) as { model_stats: Stats[] };
    expect(model_stats.map((s) => [s.name, s.version])).toEqual([['linear', '1.0']]);
    const s = model_stats[0]!;
    const batches = total(m, 'kiln_batches_total', linear);
    expect(s.inference_stats.success.count).toBe(12);
    expect(s.inference_stats.fail.count).toBe(1);
    expect(s.inference_stats.queue.count).toBe(m.get(`kiln_queue_seconds_count{${linear}}`));
    // ns are rounded per request: within a microsecond of the histograms' sums.
    expect(Math.abs(s.inference_stats.queue.ns - m.get(`kiln_queue_seconds_sum{${linear}}`)! * 1e9)).toBeLessThan(1000);
    const requestNs = s.inference_stats.success.ns + s.inference_stats.fail.ns;
    expect(Math.abs(requestNs - m.get(`kiln_request_seconds_sum{${linear}}`)! * 1e9)).toBeLessThan(1000);
    expect(s.inference_count).toBe(13);
    expect(s.execution_count).toBe(batches);
    expect(s.batch_stats.reduce((n, b) => n + b.compute_infer.count, 0)).toBe(batches);
    for (const b of s.batch_stats) expect(b.compute_infer.count).toBe(m.get(`kiln_batches_total{${linear},batch_size="${b.batch_size}"}`));
    expect(s.inference_stats.compute_infer.count).toBe(13);
    expect(s.inference_stats.cache_hit).toEqual({ count: 0, ns: 0 });
    expect(Date.now() - s.last_inference).toBeLessThan(60_000);

    const one = (await (await fetch(`${kiln.inference}/v2/models/linear/versions/1.0/stats`)).json()) as { model_stats: Stats[] };
    expect(one.model_stats[0]!.execution_count).toBe(s.execution_count);
    expect(((await (await fetch(`${kiln.inference}/v2/models/linear/stats`)).json()) as { model_stats: Stats[] }).model_stats).toHaveLength(
      1,
    );
    const missing = await fetch(`${kiln.inference}/v2/models/nosuchmodel/stats`);
    expect(missing.status).toBe(404);
    expect(((await (await fetch(`${kiln.inference}/v2`)).json()) as { extensions: string[] }).extensions).toContain('statistics');
  });
});

describe('metrics switches and failures', () => {
  test("--torchserve-metrics off leaves TorchServe's names out; a 401 is counted; restarts are counted", async () => {
    const dir = tempDir();
    const archive = linearArchive(dir, 'exit-on-inference', 'batchSize: 1\n');
    const kiln = await startKiln(['--models', `linear=${archive}`, '--torchserve-metrics', 'off', '--batch-size-buckets', '1', '3'], {
      env: { KILN_TOKEN: 'a-token-of-sixteen-chars' },
    });
    const auth = { 'content-type': 'application/json', authorization: 'Bearer a-token-of-sixteen-chars' };
    expect((await post(`${kiln.inference}/predictions/linear`, { row: [1, 2, 3, 4] })).status).toBe(401);
    expect((await post(`${kiln.inference}/predictions/linear`, { row: [1, 2, 3, 4] }, auth)).status).toBe(200);
    // Row 666 makes the worker exit: its request fails, and a worker is started in its place.
    expect((await post(`${kiln.inference}/predictions/linear`, { row: [666, 0, 0, 0] }, auth)).status).toBe(500);
    await until(async () => (await scrape(kiln)).get(`kiln_worker_restarts_total{${linear}}`) === 1);
    // A binary v2 answer is written straight to the socket (send-parts.ts), and still counted.
    const binary = await post(
      `${kiln.inference}/v2/models/linear/infer`,
      {
        inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }],
        outputs: [{ name: 'y', parameters: { binary_data: true } }],
      },
      auth,
    );
    expect(binary.status).toBe(200);

    const m = await scrape(kiln);
    expect([...m.keys()].filter((k) => /^(ts_|Requests\dXX|QueueTime|WorkerThreadTime|WorkerLoadTime)/.test(k))).toEqual([]);
    expect(m.get(`kiln_requests_total{${linear},status="401",error_code="KILN_ERR_UNAUTHORIZED",api="torchserve"}`)).toBe(1);
    expect(m.get(`kiln_requests_total{${linear},status="500",error_code="KILN_ERR_WORKER_DIED",api="torchserve"}`)).toBe(1);
    expect(m.get(`kiln_requests_total{${linear},status="200",error_code="",api="v2"}`)).toBe(1);
    expect(m.get(`kiln_batch_size_bucket{le="3",${linear}}`)).toBe(3);
  });

  test('buckets that do not ascend are refused at start, naming the key', async () => {
    await expect(startKiln(['--latency-buckets', '0.1', '0.01'])).rejects.toThrow(
      'latencyBuckets must be in ascending order, each bound once; received [0.1, 0.01]',
    );
  });
});
