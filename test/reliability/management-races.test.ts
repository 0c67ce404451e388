import { describe, expect, test } from 'vitest';
import { workerPids } from '../support/catalogue.js';
import { filesUnder, processesUsing } from '../support/hygiene.js';
import { tempDir } from '../support/kiln.js';
import { linearExpected } from '../support/onnx-models.js';
import { linearArchive, post, startKiln, until, type RunningKiln } from '../support/server.js';

const y = (row: number[]) => linearExpected(row).map(Math.fround);

/** The process table holds the server and the workers it lists, nothing more. */
async function expectNoOrphans(kiln: RunningKiln, scratch: string): Promise<void> {
  const expected = [kiln.child.pid!, ...(await workerPids(kiln))].sort();
  await until(() => processesUsing(scratch).sort().join() === expected.join(), 10_000).catch(() => {});
  expect(processesUsing(scratch).sort()).toEqual(expected);
}

/** SIGTERM: exit 0, then no process and no file is left. */
async function expectCleanStop(kiln: RunningKiln, scratch: string): Promise<void> {
  expect(await kiln.stop('SIGTERM')).toBe(0);
  await until(() => processesUsing(scratch).length === 0, 10_000);
  expect(filesUnder(scratch)).toEqual([]);
}

/** A server with the model API on, process workers, and `linear.mar` in its model store. */
async function serve(handler: string, config: string): Promise<{ kiln: RunningKiln; scratch: string }> {
  const dir = tempDir();
  const scratch = tempDir('kiln-tmpdir-'); // the server's TMPDIR: its work folder, and a mark on each worker
  linearArchive(dir, handler, `isolation: process\n${config}`);
  const kiln = await startKiln(['--model-store', 'store', '--enable-model-api', '--models', 'linear=linear.mar'], {
    cwd: dir,
    env: { TMPDIR: scratch },
  });
  return { kiln, scratch };
}

describe('management races', () => {
  test('scaling while unregistering starts no worker that belongs to no model, and SIGTERM still exits', async () => {
    const { kiln, scratch } = await serve('slow-inference', 'batchSize: 1\n');
    for (const round of [1, 2]) {
      const registered = await fetch(`${kiln.management}/models?url=linear.mar&model_name=victim&initial_workers=1`, { method: 'POST' });
      expect(registered.status).toBe(200);
      // Requests in hand make the drain last (200 ms each, one worker).
      const inflight = Array.from({ length: 4 }, (_, i) => post(`${kiln.inference}/predictions/victim`, { row: [i, 1, 1, 1] }));
      await new Promise((r) => setTimeout(r, 50));
      // Scale requests every few milliseconds from just before the DELETE until just after it is
      // answered: some land while the queue drains, some while the workers stop.
      let unregistered = false;
      const scaling = (async () => {
        const answers: { status: number; body: { errorCode?: string; message?: string } }[] = [];
        for (let after = 0; after < 3; after += unregistered ? 1 : 0) {
          const scaled = await fetch(`${kiln.management}/models/victim?min_worker=${2 + (answers.length % 2)}`, { method: 'PUT' });
          answers.push({ status: scaled.status, body: (await scaled.json()) as { errorCode?: string; message?: string } });
        }
        return answers;
      })();
      await new Promise((r) => setTimeout(r, 5));
      const removed = await fetch(`${kiln.management}/models/victim`, { method: 'DELETE' });
      unregistered = true;
      expect(removed.status, `round ${round}`).toBe(200);
      const answers = await scaling;
      // Every request accepted before the unregister is answered.
      for (const [i, answer] of (await Promise.all(inflight)).entries()) {
        expect(answer.status).toBe(200);
        expect(answer.json.y).toEqual(y([i, 1, 1, 1]));
      }
      expect((await post(`${kiln.inference}/predictions/victim`, { row: [1, 1, 1, 1] })).status).toBe(404);
      await expectNoOrphans(kiln, scratch);
      const refused = answers.filter((a) => a.status !== 202);
      // Refused because the model is going, or gone: the reason is named.
      for (const { status, body } of refused) {
        expect([status, body.errorCode, body.message]).toEqual(
          status === 503
            ? [
                503,
                'KILN_ERR_MODEL_NOT_READY',
                expect.stringMatching(/^model "victim" version 1\.0 cannot be scaled: it (is being|was) unregistered$/),
              ]
            : [404, 'KILN_ERR_MODEL_NOT_FOUND', 'Model not found: victim; registered models: linear'],
        );
      }
      expect(
        refused.some((a) => a.status === 503),
        JSON.stringify(answers),
      ).toBe(true); // a scale did land mid-unregister
    }
    expect((await post(`${kiln.inference}/predictions/linear`, { row: [1, 2, 3, 4] })).json.y).toEqual(y([1, 2, 3, 4]));
    await expectCleanStop(kiln, scratch);
  });

  test('scaling 3 → 1 under load fails no request: idle workers stop first, busy ones finish their batch', async () => {
    const { kiln, scratch } = await serve('slow-inference', 'batchSize: 1\nminWorkers: 3\n');
    // 30 requests of 200 ms each over 3 workers: every worker is busy when the scale-down lands.
    const inflight = Array.from({ length: 30 }, (_, i) => post(`${kiln.inference}/predictions/linear`, { row: [i, 2, 0, 1] }));
    await until(async () => /kiln_queue_size\{[^}]*\} [1-9]/.test(await (await fetch(`${kiln.metrics}/metrics`)).text()));
    const scaled = await fetch(`${kiln.management}/models/linear?min_worker=1&synchronous=true`, { method: 'PUT' });
    expect(scaled.status).toBe(200);
    const answers = await Promise.all(inflight);
    expect(answers.map((a) => a.status)).toEqual(new Array(30).fill(200));
    answers.forEach((a, i) => expect(a.json.y).toEqual(y([i, 2, 0, 1])));
    expect(new Set(answers.map((a) => a.json.worker)).size).toBe(3); // all three served before two stopped
    expect(await workerPids(kiln)).toHaveLength(1);
    expect(kiln.output()).not.toMatch(/exited \(|died|being restarted/); // no worker ended unasked, no request failed
    await expectNoOrphans(kiln, scratch);
    await expectCleanStop(kiln, scratch);
  });

  test('register, unregister, scale and infer on one model at once: no crash, only the answers each race allows, no orphans', async () => {
    const { kiln, scratch } = await serve('linear', 'batchSize: 2\nmaxBatchDelay: 5\n');
    const m = kiln.management;
    // Each operation, and the statuses (with Kiln codes) it may get while the others race it.
    // Unregistering waits between tries, so the model is up now and then for the others to find.
    const operations: Record<string, { run: (i: number) => Promise<Response>; allowed: Record<number, string[]>; pauseMs: number }> = {
      register: {
        run: () => fetch(`${m}/models?url=linear.mar&model_name=racer&initial_workers=1`, { method: 'POST' }),
        allowed: { 200: [], 409: ['KILN_ERR_MODEL_CONFLICT'] },
        pauseMs: 50,
      },
      unregister: {
        run: () => fetch(`${m}/models/racer`, { method: 'DELETE' }),
        allowed: { 200: [], 404: ['KILN_ERR_MODEL_NOT_FOUND'] },
        pauseMs: 2_000,
      },
      scale: {
        run: (i) => fetch(`${m}/models/racer?min_worker=${1 + (i % 3)}&synchronous=${i % 2 === 0}`, { method: 'PUT' }),
        allowed: { 200: [], 202: [], 404: ['KILN_ERR_MODEL_NOT_FOUND'], 503: ['KILN_ERR_MODEL_NOT_READY'] },
        pauseMs: 300,
      },
      infer: {
        run: (i) =>
          fetch(`${kiln.inference}/predictions/racer`, {
            method: 'POST',
            body: JSON.stringify({ row: [i, 0, 1, 2] }),
            headers: { 'content-type': 'application/json' },
          }),
        allowed: { 200: [], 404: ['KILN_ERR_MODEL_NOT_FOUND'], 503: ['KILN_ERR_MODEL_NOT_READY'] },
        pauseMs: 10,
      },
    };
    const seen: Record<string, Record<number, number>> = {};
    const deadline = Date.now() + 9_000;
    await Promise.all(
      Object.entries(operations).flatMap(([name, op]) =>
        [0, 1].map(async (lane) => {
          for (let i = lane; Date.now() < deadline; i += 2) {
            const response = await op.run(i);
            const text = await response.text();
            const counts = (seen[name] ??= {});
            counts[response.status] = (counts[response.status] ?? 0) + 1;
            expect(Object.keys(op.allowed), `${name} → ${response.status} ${text}`).toContain(String(response.status));
            const codes = op.allowed[response.status]!;
            if (codes.length > 0) expect(codes, `${name} → ${text}`).toContain((JSON.parse(text) as { errorCode: string }).errorCode);
            if (name === 'infer' && response.status === 200) {
              expect((JSON.parse(text) as { y: number[] }).y, 'a wrong answer').toEqual(y([i, 0, 1, 2]));
            }
            await new Promise((r) => setTimeout(r, op.pauseMs));
          }
        }),
      ),
    );
    // Each operation both succeeded and lost a race at least once, or the test raced nothing.
    for (const name of Object.keys(operations)) expect(seen[name]![200] ?? 0, `${name}: ${JSON.stringify(seen)}`).toBeGreaterThan(0);
    expect(
      Object.values(seen)
        .flatMap((c) => Object.keys(c))
        .filter((s) => s !== '200' && s !== '202').length,
    ).toBeGreaterThan(0);
    expect(kiln.output()).not.toMatch(/KILN_ERR_INTERNAL|Unhandled|TypeError/);
    expect((await post(`${kiln.inference}/predictions/linear`, { row: [1, 2, 3, 4] })).json.y).toEqual(y([1, 2, 3, 4]));
    await expectNoOrphans(kiln, scratch);
    await expectCleanStop(kiln, scratch);
  }, 60_000);
});
