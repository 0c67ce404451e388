import { expect, test } from 'vitest';
import type { CommandIO } from '../../command-spec.js';
import { createProgress } from './progress.js';

function io(interactive: boolean): CommandIO & { err: string } {
  const out = { err: '' } as CommandIO & { err: string };
  return Object.assign(out, { cwd: '/', env: {}, interactive, stdout: () => {}, stderr: (t: string) => (out.err += t) });
}

const MiB = 1024 * 1024;

test('shows bytes written on a terminal for large archives', () => {
  const terminal = io(true);
  const progress = createProgress(terminal, 64 * MiB, true);
  progress.advance(32 * MiB);
  progress.done();
  expect(terminal.err).toContain('\rwriting 32 / 64 MiB (50%)');
  expect(terminal.err.endsWith('\n')).toBe(true);
});

test('stays silent off a terminal, for small archives, and with --quiet', () => {
  for (const [target, total, enabled] of [
    [io(false), 64 * MiB, true],
    [io(true), MiB, true],
    [io(true), 64 * MiB, false],
  ] as const) {
    const progress = createProgress(target, total, enabled);
    progress.advance(total);
    progress.done();
    expect(target.err).toBe('');
  }
});
