import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { describe, expect, test } from 'vitest';
import { launchChromium, noBrowser } from '../support/browser.js';
import { REPO_ROOT, tempDir } from '../support/kiln.js';
import { linearArchive, startKiln } from '../support/server.js';

// The status page in Debian's chromium (.ci/run installs it), against a real server under real
// traffic: what an operator sees must move with the traffic, and the page must fetch nothing but
// its own server's `status`.
const ARTIFACTS = join(REPO_ROOT, 'test/artifacts');
const PAGE_SOURCE = join(REPO_ROOT, 'packages/server/src/http/status-page.html');
const LANES = 8;

/** Concurrent lanes of POSTs to the linear model until stopped or 60 s have passed; counts the answers. */
function startTraffic(inference: string) {
  const deadline = Date.now() + 60_000;
  let stopped = false;
  const answers = new Map<number, number>();
  const lane = async (index: number) => {
    for (let i = 0; !stopped && Date.now() < deadline; i++) {
      const status = await fetch(`${inference}/predictions/linear`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ row: [index, i % 7, 1, -1] }),
        signal: AbortSignal.timeout(10_000),
      }).then(
        async (response) => (await response.arrayBuffer(), response.status),
        () => 0,
      );
      answers.set(status, (answers.get(status) ?? 0) + 1);
    }
  };
  const lanes = Promise.all(Array.from({ length: LANES }, (_, i) => lane(i)));
  return {
    answers,
    stop: async () => {
      stopped = true;
      await lanes;
    },
  };
}

/** The numbers the page shows for the linear model, parsed from its text ('—' reads as NaN). */
async function readNumbers(page: Page) {
  const text = (metric: string) => page.locator(`[data-model="linear"][data-version="1.0"][data-metric="${metric}"]`).innerText();
  const number = async (metric: string) => Number((await text(metric)).replaceAll(',', ''));
  return {
    throughput: await number('throughput'),
    p50: await number('p50'),
    p99: await number('p99'),
    batchSize: await number('batch-size'),
    requests: await number('requests'),
    points: await page.locator('section[data-model="linear"] figure[data-chart="throughput"] path').evaluate((p) => {
      return (p.getAttribute('d') ?? '').split(/[ML]/).filter(Boolean).length;
    }),
  };
}

describe('the status page in a real browser', () => {
  test.skipIf(noBrowser)(
    'shows the model, its workers and live charts under traffic, fetches nothing elsewhere, and says when polling fails',
    async () => {
      const source = readFileSync(PAGE_SOURCE, 'utf8');
      expect(source).not.toMatch(/<script[^>]*\ssrc\s*=/i);
      expect(source).not.toMatch(/<link[^>]*href\s*=\s*["']?(https?:)?\/\//i);
      expect(source).not.toMatch(/@import|url\(\s*["']?(https?:)?\/\//i);

      const dir = tempDir();
      // One worker, 200 ms a batch, four to a batch, eight clients: batches fill and requests queue.
      const archive = linearArchive(dir, 'slow-inference', 'batchSize: 4\nmaxBatchDelay: 20\nminWorkers: 1\nmaxWorkers: 1\n');
      // And a model that cannot load, so the page has a failure to show.
      const broken = linearArchive(dir, 'throw-in-initialize', 'batchSize: 1\nminWorkers: 1\nmaxWorkers: 1\n', 'broken');
      const kiln = await startKiln(['--models', `linear=${archive}`, `broken=${broken}`]);
      const served = await fetch(`${kiln.management}/`);
      expect(served.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(await served.text(), 'the built copy in dist is the source page').toBe(source);

      const browser = await launchChromium();
      const traffic = startTraffic(kiln.inference);
      try {
        const page = await browser.newPage({ viewport: { width: 1280, height: 800 }, permissions: ['clipboard-read', 'clipboard-write'] });
        page.setDefaultTimeout(15_000);
        const problems: string[] = [];
        page.on('console', (message) => {
          if (message.type() === 'error') problems.push(`console: ${message.text()}`);
        });
        page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
        const requested: string[] = [];
        page.on('request', (request) => requested.push(request.url()));

        await page.goto(`${kiln.management}/`);
        expect(await page.title()).toBe('Kiln status');

        // The table: the model, ready, with a worker that has a pid.
        const row = page.locator('#models tr[data-model="linear"][data-version="1.0"]');
        await expect.poll(() => row.locator('[data-field="state"]').innerText(), { timeout: 15_000 }).toBe('ready');
        expect(await row.locator('td').first().innerText()).toBe('linear');
        expect(await row.innerText()).toContain('default');
        const worker = row.locator('[data-worker]').first();
        expect(Number(await worker.getAttribute('data-pid'))).toBeGreaterThan(0);
        expect(await worker.innerText()).toMatch(/pid \d+ · (idle|busy) · \d+\.\d MiB/);
        expect(await page.locator('#server').innerText()).toContain(new URL(kiln.inference).host);
        // The model that failed says so, in the failure's colour, and why.
        const failed = page.locator('#models tr[data-model="broken"] [data-field="state"]');
        expect(await failed.innerText()).toBe('failed');
        // (The page's own code, as text: the test's TypeScript has no DOM.)
        expect(
          await page.evaluate(`getComputedStyle(document.querySelector('#models tr[data-model="broken"] [data-field="state"]')).color`),
        ).toBe('rgb(185, 28, 28)');
        expect(await page.locator('#models tr[data-model="broken"] .reason').innerText()).toContain(
          'the label file is missing from this archive',
        );

        // The charts, once two readings with traffic between them are in.
        await expect
          .poll(async () => (await readNumbers(page)).throughput, { timeout: 15_000, message: 'throughput shown' })
          .toBeGreaterThan(0);
        const first = await readNumbers(page);
        await page.waitForTimeout(2_000);
        const second = await readNumbers(page);
        for (const reading of [first, second]) {
          expect(reading.throughput).toBeGreaterThan(0);
          // Each request waits at least for its batch's 200 ms, so it lands above the 100 ms bucket bound.
          expect(reading.p50).toBeGreaterThanOrEqual(100);
          expect(reading.p50).toBeLessThan(10_000);
          expect(reading.p99).toBeGreaterThanOrEqual(reading.p50);
          expect(reading.batchSize).toBeGreaterThanOrEqual(1);
          expect(reading.batchSize).toBeLessThanOrEqual(4);
        }
        expect(second.requests).toBeGreaterThan(first.requests);
        expect(second.points, 'new points on the throughput line').toBeGreaterThan(first.points);
        // Four requests a batch, one 200 ms batch at a time: no more than 20 requests a second can be answered.
        expect(second.throughput).toBeLessThan(25);
        const status = (await (await fetch(`${kiln.management}/status`)).json()) as {
          models: { name: string; totals: { requests: number } }[];
        };
        expect(second.requests).toBeLessThanOrEqual(status.models.find((m) => m.name === 'linear')!.totals.requests);

        // The percentiles are Prometheus's histogram_quantile: interpolated inside the bucket the rank falls in.
        const quantiles = await page.evaluate(`[
        histogramQuantile(0.5, [0.1, 0.25, 0.5], [0, 4, 20, 20]),
        histogramQuantile(0.99, [0.1, 0.25, 0.5], [0, 0, 0, 5]),
        histogramQuantile(0.5, [0.1, 0.25, 0.5], [0, 0, 0, 0]),
      ]`);
        expect(quantiles).toEqual([0.25 + 0.25 * (6 / 16), 0.5, NaN]);

        const curl = await page.locator('section[data-model="linear"] .curl code').innerText();
        expect(curl).toMatch(/\/v2\/models\/linear\/versions\/1\.0\/infer|\/predictions\/linear/);
        expect(curl.startsWith('curl ')).toBe(true);
        await page.locator('section[data-model="linear"] .curl button').click();
        expect(await page.evaluate('navigator.clipboard.readText()')).toBe(curl);

        mkdirSync(ARTIFACTS, { recursive: true });
        await page.screenshot({ path: join(ARTIFACTS, 'status-page.png'), fullPage: true });
        // (Before the failure below, which Chromium itself logs as a console error.)
        expect(problems).toEqual([]);

        // A failing poll puts up the banner; the next good one takes it down.
        const banner = page.locator('#banner');
        expect(await banner.isHidden()).toBe(true);
        await page.route('**/status', (route) => route.fulfill({ status: 503, body: 'down for a moment' }));
        await expect.poll(() => banner.isVisible(), { timeout: 5_000 }).toBe(true);
        expect(await banner.innerText()).toContain('HTTP 503');
        await page.screenshot({ path: join(ARTIFACTS, 'status-page-error.png') });
        await page.unroute('**/status');
        await page.route('**/status', (route) => route.abort('connectionrefused'));
        await expect.poll(() => banner.innerText(), { timeout: 5_000 }).toContain('the server could not be reached');
        await page.unroute('**/status');
        await expect.poll(() => banner.isHidden(), { timeout: 5_000 }).toBe(true);

        const origin = new URL(kiln.management).origin;
        expect(requested.filter((url) => new URL(url).origin !== origin)).toEqual([]);
        expect(requested.length).toBeGreaterThan(3);
      } finally {
        await browser.close();
        await traffic.stop();
        await kiln.stop();
      }
      expect([...traffic.answers.keys()], 'every request answered 200').toEqual([200]);
    },
    90_000,
  );
});
