// The server under soak: archiving the model, starting `kiln serve` on free 127.0.0.1 ports,
// reading its memory and open files from /proc, and stopping it, whatever way the soak ends.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { descendants, killTree } from '../proc-tree.mjs';
import { writeLinearModel } from './model.mjs';

export { descendants, killTree };

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const KILN_BIN = join(REPO_ROOT, 'packages/cli/bin/kiln.js');

/**
 * Archives the linear model with test/fixtures/handlers/soak.ts into `dir`; returns the .mar path.
 * @param {string} dir
 * @param {{ name: string, config: string }} model
 */
export function archiveSoakModel(dir, model) {
  mkdirSync(dir, { recursive: true });
  writeLinearModel(join(dir, 'linear.onnx'));
  writeFileSync(join(dir, 'model-config.yaml'), model.config);
  const handler = join(REPO_ROOT, 'test/fixtures/handlers/soak.ts');
  const args = ['archive', '--model-name', model.name, '-v', '1.0', '--serialized-file', 'linear.onnx', '--handler', handler];
  try {
    execFileSync(process.execPath, [KILN_BIN, ...args, '-c', 'model-config.yaml', '--export-path', 'store', '-f', '-q'], {
      cwd: dir,
      stdio: 'pipe',
    });
  } catch (error) {
    throw new Error(`kiln archive failed: ${String(error.stderr ?? error.message).trim()}`);
  }
  return join(dir, 'store', `${model.name}.mar`);
}

/** Servers started here and not yet known to have exited: killed, with their workers, when this process exits. */
const live = new Set();
process.on('exit', () => {
  for (const pid of live) killTree(pid);
});
// A signal would otherwise end this process without running 'exit' handlers.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => process.exit(130));

/**
 * @typedef {object} RunningServer
 * @property {number} pid
 * @property {string} inference   base URL of the inference API
 * @property {string} management  base URL of the management API
 * @property {() => string} output  everything the server printed so far
 * @property {() => void} collectGarbage  SIGUSR2: a full garbage collection, when the server was started with gc-hook.mjs
 * @property {(graceMs: number) => Promise<{ code: number | null, signal: string | null, ms: number, forced: boolean }>} stop
 *   SIGTERM, then SIGKILL to the server and its workers if it has not exited after `graceMs`
 */

/**
 * Starts `kiln serve` with every API on a free port of 127.0.0.1 and waits for "Kiln is ready".
 * `nodeArgs` go to the server's node (not to its workers, which Kiln starts with arguments of its own).
 * @param {string[]} args
 * @param {string[]} [nodeArgs]
 * @param {Record<string, string>} [env]  added to this process's environment
 * @returns {Promise<RunningServer>}
 */
export async function startServer(args, nodeArgs = [], env = {}) {
  const addresses = ['inference', 'management', 'metrics'].flatMap((api) => [`--${api}-address`, 'http://127.0.0.1:0']);
  const child = spawn(process.execPath, [...nodeArgs, KILN_BIN, 'serve', ...addresses, ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child.pid);
  let output = '';
  const keep = (chunk) => {
    output += chunk;
    // The log of a long soak is mostly worker restarts: keep the start and the most recent part.
    if (output.length > 2_000_000) output = output.slice(0, 20_000) + '\n[...]\n' + output.slice(-500_000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise((resolve) =>
    child.once('exit', (code, signal) => {
      live.delete(child.pid);
      resolve({ code, signal });
    }),
  );
  const deadline = Date.now() + 60_000;
  while (!/Kiln is ready/.test(output)) {
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
      killTree(child.pid);
      throw new Error(`kiln serve did not get ready:\n${output.slice(-4000)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const address = (api) => new RegExp(`${api} API listening on (http:\\/\\/[^\\s"]+)`).exec(output)?.[1];
  return {
    pid: child.pid,
    inference: address('inference'),
    management: address('management'),
    output: () => output,
    collectGarbage: () => child.kill('SIGUSR2'),
    stop: async (graceMs) => {
      const started = performance.now();
      child.kill('SIGTERM');
      let timer;
      const late = new Promise((resolve) => (timer = setTimeout(() => resolve('late'), graceMs)));
      const first = await Promise.race([exited, late]);
      clearTimeout(timer);
      const forced = first === 'late';
      if (forced) killTree(child.pid);
      const { code, signal } = await exited;
      // Workers left behind by a server that was killed.
      for (const pid of descendants(child.pid)) killTree(pid);
      return { code, signal, ms: Math.round(performance.now() - started), forced };
    },
  };
}

/** Resident set size of a pid in KiB, from VmRSS in /proc/PID/status. */
export function rssKib(pid) {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
}

/**
 * The open file descriptors of a pid, counted by kind (`socket`, `pipe`, `anon_inode:[eventpoll]`,
 * `file`, ...), from /proc/PID/fd.
 * @returns {{ count: number, kinds: Record<string, number> }}
 */
export function openFds(pid) {
  const kinds = {};
  let count = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let target;
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue; // closed while we looked
    }
    const kind = target.startsWith('/') ? 'file' : target.replace(/:\[\d+\]$/, '');
    kinds[kind] = (kinds[kind] ?? 0) + 1;
    count++;
  }
  return { count, kinds };
}
