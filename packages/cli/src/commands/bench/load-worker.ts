/*
 * The load generator: a worker thread of its own, so that its event loop never waits on the
 * server's (when `kiln bench` serves an archive in-process) nor on the progress display. It runs
 * one concurrency level at a time, closed loop: each of `concurrency` clients sends its next
 * request when the last one is answered, over a kept-alive connection of its own.
 *
 * With `grpc`, each client is a grpc-js client of its own on a channel of its own (a local
 * subchannel pool), so that c clients hold c HTTP/2 connections, as c HTTP clients hold c sockets,
 * rather than multiplexing every call over one connection. gRPC's libraries are loaded only then.
 *
 * One level is: warm-up (answers not counted), a pause while the parent reads the server's
 * metrics, then the measured window, until it has drained. Nothing is in flight at either reading,
 * so the server's counters and the client's agree request for request.
 */
import type * as Grpc from '@grpc/grpc-js';
import http from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { parentPort } from 'node:worker_threads';
import type { GrpcInferMessage } from './bench-request.js';
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
  /** For `grpc`: a ModelInfer to `address` (host:port) instead of the HTTP request; `headers` go as metadata. */
  grpc?: { address: string; message: GrpcInferMessage };
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

/** One sender per client loop, and what closes them all. */
interface Clients {
  senders: (() => Promise<number | string>)[];
  close(): void;
}

function httpClients(job: LoadJob): Clients {
  const url = new URL(job.url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: job.concurrency });
  const sender = () => send(job, agent, url);
  return { senders: Array.from({ length: job.concurrency }, () => sender), close: () => agent.destroy() };
}

/** The proto that ships in @kiln/server. */
function protoPath(): string {
  return join(dirname(createRequire(import.meta.url).resolve('@kiln/server/package.json')), 'proto', 'grpc_service.proto');
}

interface InferenceClient {
  ModelInfer(
    message: GrpcInferMessage,
    metadata: Grpc.Metadata,
    options: Grpc.CallOptions,
    callback: (error: Grpc.ServiceError | null) => void,
  ): void;
  close(): void;
}

/** A unary ModelInfer per call: 200 when it succeeds, grpc-<CODE_NAME> when it fails. */
async function grpcClients(job: LoadJob, grpcJob: NonNullable<LoadJob['grpc']>): Promise<Clients> {
  const grpc = await import('@grpc/grpc-js');
  const loader = await import('@grpc/proto-loader');
  const definition = loader.loadSync(protoPath(), { keepCase: true, longs: String, enums: String, defaults: false, oneofs: true });
  const { inference } = grpc.loadPackageDefinition(definition) as unknown as {
    inference: {
      GRPCInferenceService: new (address: string, credentials: Grpc.ChannelCredentials, options: Grpc.ChannelOptions) => InferenceClient;
    };
  };
  const service = inference.GRPCInferenceService;
  const metadata = new grpc.Metadata();
  for (const [name, value] of Object.entries(job.headers)) metadata.set(name, value);
  const clients = Array.from(
    { length: job.concurrency },
    () =>
      new service(grpcJob.address, grpc.credentials.createInsecure(), {
        'grpc.use_local_subchannel_pool': 1,
        'grpc.max_receive_message_length': -1,
        'grpc.max_send_message_length': -1,
      }),
  );
  const codeName = (code: number) => (grpc.status as unknown as Record<number, string>)[code] ?? String(code);
  return {
    senders: clients.map(
      (client) => () =>
        new Promise<number | string>((resolve) =>
          client.ModelInfer(grpcJob.message, metadata, { deadline: Date.now() + job.timeoutMs }, (error) =>
            resolve(error ? `grpc-${codeName(error.code)}` : 200),
          ),
        ),
    ),
    close: () => clients.forEach((client) => client.close()),
  };
}

async function runLevel(job: LoadJob, go: Promise<void>): Promise<void> {
  const clients = job.grpc === undefined ? httpClients(job) : await grpcClients(job, job.grpc);
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
      clients.senders.map(async (send) => {
        while (performance.now() < until) {
          const status = await send();
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
    clients.senders.map(async (send) => {
      while (sent < budget && performance.now() < sendUntil) {
        sent++;
        const t = performance.now();
        const status = await send();
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
  clients.close();
  const outcome: LevelOutcome = { requests: sent, successes: samples.length, errors, durationS, latencyMs: samples.summary() };
  port.postMessage({ type: 'measured', outcome } satisfies FromWorker);
}

let release: () => void = () => {};
port.on('message', (message: ToWorker) => {
  if (message.type === 'go') return release();
  const go = new Promise<void>((resolve) => (release = resolve));
  void runLevel(message.job, go);
});
