import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, test } from 'vitest';
import type { BenchReport } from '../../packages/cli/src/commands/bench/report-types.js';
import { launchChromium, noBrowser } from '../support/browser.js';
import { KILN_BIN, REPO_ROOT, tempDir } from '../support/kiln.js';
import { linearArchive } from '../support/server.js';

const ARTIFACTS = join(REPO_ROOT, 'test/artifacts');

describe('report.html in a real browser', () => {
  test.skipIf(noBrowser)(
    'draws its three charts with no network access, one point per level, and looks right in a screenshot',
    async () => {
      const dir = tempDir();
      const archive = linearArchive(dir, 'linear', 'batchSize: 8\nmaxBatchDelay: 5\n');
      const run = spawnSync(
        process.execPath,
        [KILN_BIN, 'bench', archive, '-n', '300', '-c', '1,4,16', '--warmup', '0.2', '--report', dir],
        {
          encoding: 'utf8',
        },
      );
      expect(run.status, run.stderr).toBe(0);
      const report = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as BenchReport;

      const browser = await launchChromium();
      try {
        const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
        const requested: string[] = [];
        await page.route('**/*', (route) => {
          const url = route.request().url();
          if (url.startsWith('file:')) return route.continue();
          requested.push(url);
          return route.abort();
        });
        await page.goto(pathToFileURL(join(dir, 'report.html')).href);

        expect(await page.title()).toContain('linear');
        const charts = page.locator('figure[data-chart]');
        expect(await charts.evaluateAll((figures) => figures.map((f) => f.getAttribute('data-chart')))).toEqual([
          'throughput',
          'latency',
          'batch-sizes',
        ]);
        for (const name of ['throughput', 'latency', 'batch-sizes']) {
          const box = await page.locator(`figure[data-chart="${name}"] svg`).boundingBox();
          expect(box, name).not.toBeNull();
          expect(box!.width, name).toBeGreaterThan(300);
          expect(box!.height, name).toBeGreaterThan(100);
        }
        // One point per level on the throughput line, each titled with its value.
        const points = page.locator('figure[data-chart="throughput"] svg circle');
        expect(await points.count()).toBe(report.levels.length);
        const titles = await points.evaluateAll((circles) => circles.map((c) => c.querySelector('title')?.textContent ?? ''));
        report.levels.forEach((level, i) => expect(titles[i]).toContain(level.throughput.toFixed(1)));
        expect(requested).toEqual([]);

        mkdirSync(ARTIFACTS, { recursive: true });
        await page.screenshot({ path: join(ARTIFACTS, 'bench-report.png'), fullPage: true });
      } finally {
        await browser.close();
      }
    },
  );
});
