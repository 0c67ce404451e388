import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { MODEL_CONFIG_KEYS, modelConfigSchema, renderModelConfigTable } from '@kiln/handler-sdk/runtime';
import { REPO_ROOT } from '../support/kiln.js';

test('docs/reference/model-config.md lists every model-config key as MODEL_CONFIG_KEYS declares it (npm run docs:model-config)', () => {
  const page = readFileSync(join(REPO_ROOT, 'docs/reference/model-config.md'), 'utf8');
  const table = /(\| key \| type and range \|[^\n]*\n(?:\|[^\n]*\n)+)/.exec(page)?.[1];
  expect(table?.trimEnd()).toBe(renderModelConfigTable());
});

test('the schema has exactly the declared keys', () => {
  expect(Object.keys(modelConfigSchema.properties)).toEqual(Object.keys(MODEL_CONFIG_KEYS));
});
