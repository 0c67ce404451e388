/*
 * The load generator: a worker thread of its own, so that its event loop never waits on the
 * server's (when `kiln bench` serves an archive in-process) nor on the progress display. It runs
 * one concurrency level at a time, closed loop: each of `concurrency` clients sends its next
 * request when the last one is answered, over a kept-alive connection of its own.
 *
 * One level is: warm-up (answers not counted), a pause while the parent reads the server's
 * metrics, then the measured window, until it has drained. Nothing is in flight at either reading,
 * so the server's counters and the client's agree request for request.
 */
import http from 'node:http';
import { parentPort } from 'node:worker_threads';
import { Samples } from './latency.js';
import type { LatencySummary } from './report-types.js';

export interface LoadJob {
  url: string;
  headers: Record<string, string>;
  body: Uint8Array;
  concurrency: number;
  /** Seconds of warm-up; its answers are not counted. */
  warmupS: number;
  /** The measured window ends when either is reached: seconds of sending, or requests sent. */
  stop: { durationS: number; requests: number };
  timeoutMs: number;
}

export type ToWorker = { type: 'level'; job: LoadJob } | { type: 'go' };

export interface Progress {
  phase: 'warmup' | 'measure' | 'drain';
  elapsedS: number;
  done: number;
  errors: number;
}

export interface LevelOutcome {
  requests: number;
  successes: number;
  errors: Record<string, number>;
  durationS: number;
  latencyMs: LatencySummary | null;
}

export type FromWorker = { type: 'progress'; progress: Progress } | { type: 'warm' } | { type: 'measured'; outcome: LevelOutcome };

const port = parentPort!;

/** One request; resolves with the status, or with what went wrong when there was none. */
function send(job: LoadJob, agent: http.Agent, url: URL): Promise<number | string> {
  return new Promise((resolve) => {
    const request = http.request(url, { method: 'POST', agent, headers: job.headers }, (response) => {
      response.on('data', () => {});
      response.on('end', () => resolve(response.statusCode ?? 0));
      response.on('error', () => resolve('response-error'));
    });
    request.setTimeout(job.timeoutMs, () => request.destroy(new Error('timeout')));
    request.on('error', (error: NodeJS.ErrnoException) => resolve(error.message === 'timeout' ? 'timeout' : (error.code ?? 'error')));
    request.end(job.body);
  });
}

async function runLevel(job: LoadJob, go: Promise<void>): Promise<void> {
  const url = new URL(job.url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: job.concurrency });
  const progress: Progress = { phase: 'warmup', elapsedS: 0, done: 0, errors: 0 };
  let phaseStart = performance.now();
  const ticker = setInterval(() => {
    progress.elapsedS = (performance.now() - phaseStart) / 1000;
    port.postMessage({ type: 'progress', progress } satisfies FromWorker);
  }, 200);

  // Warm-up: the same loop, answers thrown away.
  if (job.warmupS > 0) {
    const until = performance.now() + job.warmupS * 1000;
    await Promise.all(
      Array.from({ length: job.concurrency }, async () => {
        while (performance.now() < until) {
          const status = await send(job, agent, url);
          // A refused connection fails at once: do not spin on it.
          if (typeof status === 'string') await new Promise((resolve) => setTimeout(resolve, 10));
        }
      }),
    );
  }
  port.postMessage({ type: 'warm' } satisfies FromWorker);
  await go;

  const samples = new Samples();
  const errors: Record<string, number> = {};
  let sent = 0;
  progress.phase = 'measure';
  progress.done = 0;
  const started = (phaseStart = performance.now());
  const sendUntil = started + job.stop.durationS * 1000;
  const budget = job.stop.requests;
  await Promise.all(
    Array.from({ length: job.concurrency }, async () => {
      while (sent < budget && performance.now() < sendUntil) {
        sent++;
        const t = performance.now();
        const status = await send(job, agent, url);
        progress.done++;
        if (status === 200) samples.push(performance.now() - t);
        else {
          errors[status] = (errors[status] ?? 0) + 1;
          progress.errors++;
          if (typeof status === 'string') await new Promise((resolve) => setTimeout(resolve, 10));
        }
        if (performance.now() >= sendUntil) progress.phase = 'drain';
      }
    }),
  );
  const durationS = (performance.now() - started) / 1000;
  clearInterval(ticker);
  agent.destroy();
  const outcome: LevelOutcome = { requests: sent, successes: samples.length, errors, durationS, latencyMs: samples.summary() };
  port.postMessage({ type: 'measured', outcome } satisfies FromWorker);
}

let release: () => void = () => {};
port.on('message', (message: ToWorker) => {
  if (message.type === 'go') return release();
  const go = new Promise<void>((resolve) => (release = resolve));
  void runLevel(message.job, go);
});
