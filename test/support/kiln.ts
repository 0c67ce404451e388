import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { onTestFinished } from 'vitest';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const KILN_BIN = join(REPO_ROOT, 'packages/cli/bin/kiln.js');

export interface KilnRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real `kiln` binary (built by `npm test` before the suite starts). */
export function kiln(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): KilnRun {
  const result = spawnSync(process.execPath, [KILN_BIN, ...args], {
    cwd: options.cwd ?? REPO_ROOT,
    env: { ...process.env, ...options.env },
    encoding: 'utf8',
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Starts `kiln` without waiting, for tests that signal it. */
export function spawnKiln(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  return spawn(process.execPath, [KILN_BIN, ...args], {
    cwd: options.cwd ?? REPO_ROOT,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** A fresh temporary folder, removed when the test ends. */
export function tempDir(prefix = 'kiln-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
