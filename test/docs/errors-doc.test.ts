import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { CLI_ERRORS, ERROR_CATALOGUE, SDK_ERRORS, SERVER_ERRORS } from '@kiln/handler-sdk/errors';
import { REPO_ROOT } from '../support/kiln.js';

const CATALOGUES = ERROR_CATALOGUE;

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
  for (const [code, spec] of Object.entries(CATALOGUES))
    expect({ code, status: documented.get(code) }).toEqual({ code, status: spec.status });
});

test('no code is declared by two packages', () => {
  const all = [SDK_ERRORS, SERVER_ERRORS, CLI_ERRORS].flatMap((catalogue) => Object.keys(catalogue));
  expect(all.length).toBe(new Set(all).size);
});

test('every error code is asserted by at least one test', () => {
  const files = ['test', 'packages', 'templates'].flatMap((top) =>
    readdirSync(join(REPO_ROOT, top), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.test.ts') && !f.includes('node_modules') && !f.endsWith('errors-doc.test.ts'))
      .map((f) => join(REPO_ROOT, top, f)),
  );
  const text = files.map((f) => readFileSync(f, 'utf8')).join('\n');
  expect(Object.keys(ERROR_CATALOGUE).filter((code) => !new RegExp(`${code}(?![A-Z0-9_])`).test(text))).toEqual([]);
});
