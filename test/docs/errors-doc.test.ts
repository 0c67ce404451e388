import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { sdkError } from '@kiln/handler-sdk';
import { serverError } from '@kiln/server';
import { cliError } from '../../packages/cli/src/errors.js';
import { REPO_ROOT } from '../support/kiln.js';

/** Every catalogue, by package: a new package's catalogue must be added here. */
const CATALOGUES = { ...sdkError.catalogue, ...cliError.catalogue, ...serverError.catalogue };

/** Rows of docs/reference/errors.md whose first cell is a backticked code: code → status. */
function documentedCodes(): Map<string, number> {
  const doc = readFileSync(join(REPO_ROOT, 'docs/reference/errors.md'), 'utf8');
  const rows = new Map<string, number>();
  for (const match of doc.matchAll(/^\| `(KILN_ERR_[A-Z0-9_]+)` \| (\d{3}) \|/gm)) rows.set(match[1]!, Number(match[2]));
  return rows;
}

test('every error code has a row in docs/reference/errors.md, and every row is a live code', () => {
  const documented = documentedCodes();
  expect([...documented.keys()].sort()).toEqual(Object.keys(CATALOGUES).sort());
});

test('the documented status of each code is the one the catalogue maps it to', () => {
  const documented = documentedCodes();
  for (const [code, spec] of Object.entries(CATALOGUES)) expect({ code, status: documented.get(code) }).toEqual({ code, status: spec.status });
});

test('no code is declared by two packages', () => {
  const all = [sdkError, cliError, serverError].flatMap((factory) => Object.keys(factory.catalogue));
  expect(all.length).toBe(new Set(all).size);
});
