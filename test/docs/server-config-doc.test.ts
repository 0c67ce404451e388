import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { SERVER_DEFAULTS, SERVER_OPTIONS, renderServerOptionsTable, renderTorchServeKeysTable, serverConfigSchema } from '@kiln/server';
import { REPO_ROOT } from '../support/kiln.js';

test('docs/reference/server-config.md lists every server option as SERVER_OPTIONS declares it (npm run docs:server-config)', () => {
  const page = readFileSync(join(REPO_ROOT, 'docs/reference/server-config.md'), 'utf8');
  const table = /## Keys\n\n((?:\|[^\n]*\n)+)/.exec(page)?.[1];
  expect(table?.trimEnd()).toBe(renderServerOptionsTable());
});

test("docs/reference/server-config.md lists every key of TorchServe's config.properties as TORCHSERVE_KEYS reads it (npm run docs:server-config)", () => {
  const page = readFileSync(join(REPO_ROOT, 'docs/reference/server-config.md'), 'utf8');
  const table = /### Every TorchServe key\n\n((?:\|[^\n]*\n)+)/.exec(page)?.[1];
  expect(table?.trimEnd()).toBe(renderTorchServeKeysTable());
});

test('the schema, the defaults, the flags and the variables all come from the one table', () => {
  const keys = Object.keys(SERVER_OPTIONS);
  expect(Object.keys(serverConfigSchema.properties)).toEqual(keys);
  expect(Object.keys(SERVER_DEFAULTS).every((key) => keys.includes(key))).toBe(true);
  for (const [key, o] of Object.entries(SERVER_OPTIONS)) {
    // --inference-address ↔ inferenceAddress ↔ KILN_INFERENCE_ADDRESS
    // A `--no-x` switch sets `x` (to false), as commander reads it.
    const flag = o.flag.split(' ')[0]!.replace(/^--no-/, '--');
    expect(flag.slice(2).replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase())).toBe(key);
    expect(o.env).toBe(`KILN_${flag.slice(2).replace(/-/g, '_').toUpperCase()}`);
  }
});
