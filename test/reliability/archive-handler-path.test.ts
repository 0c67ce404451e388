import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { tempDir } from '../support/kiln.js';
import { linearArchive, post, startKiln } from '../support/server.js';

describe('an archive cannot run code from outside itself', () => {
  test('a manifest whose handler climbs out of the archive is refused before anything is imported; the other model serves', async () => {
    const dir = tempDir();
    const good = linearArchive(dir, 'linear', 'batchSize: 1\n');
    // A folder archive whose every hash verifies, but whose manifest names a handler outside it.
    const folder = linearArchive(dir, 'linear', 'batchSize: 1\n', 'evil', '1.0', 'no-archive');
    const marker = join(dir, 'imported');
    const outside = join(dir, 'outside.mjs');
    writeFileSync(
      outside,
      `import { writeFileSync } from 'node:fs';\nwriteFileSync(${JSON.stringify(marker)}, 'ran');\nexport default () => [];\n`,
    );
    const manifestPath = join(folder, 'MAR-INF/MANIFEST.json');
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { model: { handler: string } };
    const climb = `${'../'.repeat(12)}${outside.slice(1)}`;
    manifest.model.handler = climb;
    writeFileSync(manifestPath, JSON.stringify(manifest));

    const server = await startKiln(['--models', `linear=${good}`, `evil=${folder}`], { waitFor: /model evil.*failed to load/ });
    expect(server.output()).toContain('KILN_ERR_MANIFEST_INVALID');
    expect(server.output()).toContain(`model.handler: "${climb}" is neither a built-in handler`);
    expect(existsSync(marker)).toBe(false);
    expect((await post(`${server.inference}/predictions/linear`, { row: [1, 2, 3, 4] })).status).toBe(200);
    expect((await fetch(`${server.inference}/predictions/evil`, { method: 'POST', body: '{}' })).status).toBe(404);
  });
});
