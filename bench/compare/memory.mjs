// Memory under sustained load: does a Kiln server keep anything per request? For each Kiln
// contestant, on the ~1 ms model: warm-up requests, RSS, many more requests, RSS again. A server
// that keeps one 108 KiB input per request grows by about 2 GiB over 20,000 requests; one that
// keeps nothing grows by what its allocator and JIT settle at, a few percent.
//
//   node bench/compare/memory.mjs            # run.mjs also runs it last
//   KILN_BENCH_MEM_REQUESTS [20000|quick 3000], KILN_BENCH_MEM_WARMUP [2000|quick 500],
//   KILN_BENCH_MEM_CONCURRENCY [8], and run.mjs's KILN_BENCH_NO_ISOLATION_KEY, KILN_BENCH_KILN_ROOT,
//   KILN_BENCH_THREADS, KILN_BENCH_QUICK.
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { contestants, prepare, startServer, stopServer } from './contestants.mjs';
import { clsModel } from './models.mjs';
import { cpuMeter, descendants, rssMb, runLoad } from './procs.mjs';
import { renderMemory } from './report.mjs';

/** RSS of the server and of every process below it (process-mode workers), in MiB. */
function snapshot(pid) {
  const workers = [];
  for (const p of descendants(pid)) {
    try {
      workers.push({ pid: p, mb: rssMb(p) });
    } catch {
      /* exited meanwhile */
    }
  }
  const server = rssMb(pid);
  return { server, workers, total: server + workers.reduce((s, w) => s + w.mb, 0) };
}

/**
 * @param {{ kilnRoot: string, dir: string, model: import('./contestants.mjs').Model, contestants: import('./contestants.mjs').Contestant[], threads: number, quick: boolean, log: (line: string) => void }} o
 */
export async function measureMemory(o) {
  const env = process.env;
  const requests = Number(env.KILN_BENCH_MEM_REQUESTS ?? (o.quick ? 3000 : 20000));
  const warmup = Number(env.KILN_BENCH_MEM_WARMUP ?? (o.quick ? 500 : 2000));
  const concurrency = Number(env.KILN_BENCH_MEM_CONCURRENCY ?? 8);
  // The latency setup: one worker with every thread, batch 1, so that each request is its own batch.
  const setup = { batchSize: 1, maxBatchDelay: 0, procs: 1, threads: o.threads };
  const out = [];
  for (const c of o.contestants) {
    const entry = { contestant: c.id, label: c.label, model: o.model.key, setup, requests, warmup, concurrency };
    let server;
    // Metered from start to stop: a child's CPU time is known only once it has exited.
    const meter = cpuMeter();
    try {
      server = await startServer(o.kilnRoot, o.dir, c, o.model, setup);
      const load = (n) => runLoad({ url: server.url, bodyFile: server.body.file, headers: server.body.headers, concurrency, requests: n });
      const settle = () => new Promise((r) => setTimeout(r, 500));
      entry.warmupLoad = await load(warmup);
      await settle();
      entry.before = snapshot(server.child.pid);
      o.log(
        `memory ${c.label}: ${entry.before.total.toFixed(0)} MiB after ${warmup} requests; sending ${requests} more at c=${concurrency}`,
      );
      entry.load = await load(requests);
      await settle();
      entry.after = snapshot(server.child.pid);
      entry.growthMb = entry.after.total - entry.before.total;
      entry.growthPct = (100 * entry.growthMb) / entry.before.total;
      o.log(
        `memory ${c.label}: ${entry.after.total.toFixed(0)} MiB after ${requests} more (${entry.growthPct.toFixed(1)}%, ${entry.load.rps.toFixed(0)}/s)`,
      );
    } catch (error) {
      entry.error = String(error.message ?? error);
      o.log(`memory ${c.label}: FAILED ${entry.error}`);
    } finally {
      if (server) await stopServer(server);
    }
    entry.otherShare = meter().otherShare;
    out.push(entry);
  }
  return out;
}

// Run alone: the same measure, printed as the report's memory table.
if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const dir = mkdtempSync(join(tmpdir(), 'kiln-memory-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  const model = await prepare(clsModel(), dir);
  const kiln = contestants(process.env.KILN_BENCH_NO_ISOLATION_KEY === '1').filter((c) => c.kind === 'kiln');
  const memory = await measureMemory({
    kilnRoot: resolve(process.env.KILN_BENCH_KILN_ROOT ?? root),
    dir,
    model,
    contestants: kiln,
    threads: Number(process.env.KILN_BENCH_THREADS ?? cpus().length),
    quick: process.env.KILN_BENCH_QUICK === '1',
    log: (line) => process.stderr.write(`${line}\n`),
  });
  process.stdout.write(renderMemory(memory));
}
