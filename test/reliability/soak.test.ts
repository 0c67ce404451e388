import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { REPO_ROOT, tempDir } from '../support/kiln.js';

/** The part of bench/soak/run.mjs's JSON summary (written beside its report) that this test reads. */
interface SoakSummary {
  pass: boolean;
  seconds: number;
  seed: number;
  totals: { accepted: number; answered: number; unanswered: number; unexpected: number };
  kinds: { kind: string; accepted: number; answered: number; unexpected: number; statuses: [string, number][] }[];
  faults: { kind: string; tried: number; done: number }[];
  checks: { ok: boolean; text: string }[];
  rssGrowthPct: number;
  fdGrowthPct: number;
}

/** Every fault the soak must inflict; named here so that one silently skipped fails the test. */
const FAULTS = [
  'kill',
  'hang',
  'exit',
  'scaleUp',
  'scaleDown',
  'scaleDuringRestart',
  'clientAbort',
  'halfBody',
  'malformed',
  'unknownModel',
];

test('a 20 s soak: every accepted request is answered as its kind allows, every fault happens, RSS and open files stay flat', () => {
  const dir = tempDir('kiln-soak-test-');
  const report = join(dir, 'soak.md');
  const run = spawnSync(process.execPath, [join(REPO_ROOT, 'bench/soak/run.mjs')], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    // SIGTERM: the soak then kills the server it started before it exits.
    timeout: 140_000,
    killSignal: 'SIGTERM',
    env: { ...process.env, KILN_SOAK_SECONDS: '20', KILN_SOAK_REPORT: report },
  });
  const output = `${run.stdout}\n${run.stderr}`;
  expect(run.status, output).toBe(0);

  const markdown = readFileSync(report, 'utf8');
  const summary = JSON.parse(readFileSync(join(dir, 'soak.json'), 'utf8')) as SoakSummary;
  expect(summary.seconds).toBe(20);
  expect(summary.pass, output).toBe(true);
  const { accepted, answered, unanswered, unexpected } = summary.totals;
  expect(accepted).toBeGreaterThan(1000);
  expect(answered, output).toBe(accepted);
  expect(unanswered, output).toBe(0);
  expect(unexpected, output).toBe(0);
  expect(markdown).toContain(`Accepted ${accepted}, answered ${accepted}, accepted but unanswered 0, unexpected statuses 0.`);
  expect(markdown).toContain('## Verdict: PASS');

  // Each fault really happened, and good requests were served around them.
  for (const kind of FAULTS) {
    const fault = summary.faults.find((f) => f.kind === kind);
    expect(fault?.done ?? 0, `fault ${kind} never took effect (seed ${summary.seed})`).toBeGreaterThanOrEqual(1);
    expect(markdown).toMatch(new RegExp(`^\\| ${kind} \\| .* \\| \\d+ \\| [1-9]\\d* \\|$`, 'm'));
  }
  const good = summary.kinds.find((k) => k.kind === 'good');
  expect(good?.statuses.find(([status]) => status === '200')?.[1] ?? 0).toBeGreaterThan(1000);
  expect(summary.rssGrowthPct).toBeLessThanOrEqual(5);
  expect(summary.fdGrowthPct).toBeLessThanOrEqual(5);
}, 150_000);
