import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { launchChromium, noBrowser } from '../support/browser.js';
import { REPO_ROOT, tempDir } from '../support/kiln.js';
import { linearArchive, startKiln } from '../support/server.js';

test.skipIf(noBrowser)('Swagger UI at /docs on each API draws its routes from the OpenAPI description, offline', async () => {
  const kiln = await startKiln(['--models', `linear=${linearArchive(tempDir(), 'linear', 'batchSize: 1\n')}`]);
  const browser = await launchChromium();
  try {
    const expected = { inference: '/predictions/{model}', management: '/models', metrics: '/metrics' } as const;
    for (const [api, path] of Object.entries(expected)) {
      const base = kiln[api as keyof typeof expected];
      const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
      const elsewhere: string[] = [];
      page.on('request', (request) => {
        if (!request.url().startsWith(base)) elsewhere.push(request.url());
      });
      await page.goto(`${base}/docs`);
      // Swagger UI renders one block per operation; the path is in its summary line.
      await page.locator('.opblock-summary-path', { hasText: path }).first().waitFor({ timeout: 15_000 });
      expect(elsewhere, `${api}: requests to other origins`).toEqual([]);
      if (api === 'management') {
        mkdirSync(join(REPO_ROOT, 'test/artifacts'), { recursive: true });
        await page.screenshot({ path: join(REPO_ROOT, 'test/artifacts/swagger-ui-management.png') });
      }
      await page.close();
    }
  } finally {
    await browser.close();
    await kiln.stop();
  }
});
