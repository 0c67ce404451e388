import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { REPO_ROOT } from './support/kiln.js';

test("the README's first command archives, serves and answers a real OCR request", () => {
  const run = spawnSync(process.execPath, [join(REPO_ROOT, 'scripts/start.mjs')], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    timeout: 90_000,
    env: {
      ...process.env,
      KILN_START_ONCE: '1',
      KILN_INFERENCE_ADDRESS: 'http://127.0.0.1:0',
      KILN_MANAGEMENT_ADDRESS: 'http://127.0.0.1:0',
      KILN_METRICS_ADDRESS: 'http://127.0.0.1:0',
    },
  });
  expect(run.stdout).toMatch(
    /POST templates\/ocr\/example\/hello\.png → 200 \{"text":"Hello Kiln 2026","confidence":0\.9\d+,"rotated":false\}/,
  );
  expect(run.stdout).toMatch(
    /curl -T templates\/ocr\/example\/hello\.png -H 'content-type: image\/png' http:\/\/127\.0\.0\.1:\d+\/predictions\/ocr/,
  );
  expect(run.status).toBe(0);
});
