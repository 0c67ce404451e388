// Child processes of the benchmark: starting them, reading their answers, and making sure none
// outlives the benchmark, whatever way it ends. Kiln starts worker processes in process groups
// of their own, so killing a server's group is not enough: every descendant is found through
// /proc and killed by pid (../proc-tree.mjs).
export { descendants, killTree };
import { spawn } from 'node:child_process';
import { descendants, killTree } from '../proc-tree.mjs';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));

/** Every child still running: killed, with its descendants, when this process exits. */
const live = new Set();
process.on('exit', () => {
  for (const child of live) killTree(child.pid);
});
// A signal would otherwise end the process without running 'exit' handlers.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => process.exit(130));

/**
 * Starts counting CPU time: the whole machine's (from /proc/stat) and this process tree's (its
 * own plus that of every child it has waited for). The difference is what other processes used
 * meanwhile: on a shared 2-core machine, a test run next door moves every figure, and the report
 * should say so rather than let it pass for Kiln's cost. Times in CPU-seconds (USER_HZ = 100).
 */
export function cpuMeter() {
  const machine = () => {
    const [user, nice, system, , , irq, softirq, steal] = readFileSync('/proc/stat', 'utf8')
      .split('\n')[0]
      .trim()
      .split(/\s+/)
      .slice(1)
      .map(Number);
    return { busy: (user + nice + system + irq + softirq) / 100, steal: steal / 100 };
  };
  const own = () => {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const f = stat
      .slice(stat.lastIndexOf(')') + 2)
      .split(' ')
      .map(Number);
    return (f[11] + f[12] + f[13] + f[14]) / 100; // utime, stime, cutime, cstime
  };
  const m0 = machine();
  const o0 = own();
  const t0 = performance.now();
  return () => {
    const m1 = machine();
    const wallS = (performance.now() - t0) / 1000;
    const otherS = Math.max(0, m1.busy - m0.busy - (own() - o0));
    return { wallS, otherCpuS: otherS, otherShare: otherS / (wallS * cpus().length), stealCpuS: m1.steal - m0.steal };
  };
}

/** Resident set size of a pid in MiB, from /proc/PID/status. */
export function rssMb(pid) {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;
}

/**
 * Starts a child that is tracked for clean-up, keeping the tail of its output for error messages.
 * @returns {import('node:child_process').ChildProcess & { output: () => string, exited: Promise<number | null> }}
 */
export function start(command, args, options = {}) {
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], ...options });
  live.add(child);
  let tail = '';
  const keep = (d) => {
    tail = (tail + d).slice(-4000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  child.output = () => tail;
  child.exited = new Promise((resolve) =>
    child.once('exit', (code) => {
      live.delete(child);
      resolve(code);
    }),
  );
  child.on('error', keep);
  return /** @type {any} */ (child);
}

/** Ends a child: SIGTERM, then SIGKILL after graceMs, then any descendant left behind. */
export async function stop(child, graceMs = 10_000) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const below = descendants(child.pid);
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await child.exited;
  clearTimeout(timer);
  for (const p of below) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      /* exited with its parent, as it should */
    }
  }
}

/** Resolves with the first stdout line of a child that matches, or rejects if it exits first. */
export function waitForLine(child, pattern, timeoutMs = 120_000) {
  return new Promise((resolve, reject) => {
    let buffered = '';
    const timer = setTimeout(() => fail(new Error(`no line matching ${pattern} after ${timeoutMs} ms`)), timeoutMs);
    const onData = (d) => {
      buffered += d;
      const lines = buffered.split('\n');
      buffered = lines.pop();
      const line = lines.find((l) => pattern.test(l));
      if (line !== undefined) {
        cleanup();
        resolve(line);
      }
    };
    const onExit = (code) => fail(new Error(`exited (${code}) before printing ${pattern}:\n${child.output()}`));
    const fail = (error) => {
      cleanup();
      reject(error);
    };
    const cleanup = () => {
      clearTimeout(timer);
      child.stdout.off('data', onData);
      child.off('exit', onExit);
    };
    child.stdout.on('data', onData);
    child.once('exit', onExit);
  });
}

/** Runs load.mjs with the given options and returns its JSON. */
export async function runLoad(options) {
  const child = start(process.execPath, [`${here}load.mjs`, JSON.stringify(options)]);
  const line = await waitForLine(child, /^\{/, ((options.warmupS ?? 0) + (options.durationS ?? 0) + 700) * 1000);
  await child.exited;
  return JSON.parse(line);
}

/** A port that was free a moment ago. The servers must be told their port before they start,
 *  because spawn → first prediction is timed by polling it. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = /** @type {import('node:net').AddressInfo} */ (server.address());
      server.close(() => resolve(port));
    });
  });
}
