import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { CommandIO } from '../../command-spec.js';
import { cliError } from '../../errors.js';
import type { ParsedArgs, ParsedOptions } from '../../util/parsed.js';
import { CLI_VERSION } from '../../version.js';
import { benchRequest, type BenchRequest } from './bench-request.js';
import type { FromWorker, LevelOutcome, LoadJob, Progress, ToWorker } from './load-worker.js';
import { renderHtml, renderMarkdown, renderText } from './render-report.js';
import type { BenchReport, LevelResult } from './report-types.js';
import { breakdown, parseMetrics, type Sample } from './server-metrics.js';
import { benchSettings, type BenchSettings } from './settings.js';
import { modelInputs, openTarget, readMetrics, type Target } from './target.js';

export async function execute(args: ParsedArgs, options: ParsedOptions, io: CommandIO): Promise<void> {
  const settings = benchSettings(options);
  const startedAt = new Date().toISOString();
  const target = await openTarget(args.string(0), {
    model: options.optionalString('model'),
    metricsUrl: options.optionalString('metricsUrl'),
    protocol: settings.protocol,
    grpcAddress: settings.grpcAddress,
    cwd: io.cwd,
    warn: (m) => io.stderr(`${m}\n`),
  });
  const worker = new Worker(new URL('./load-worker.js', import.meta.url));
  try {
    const inputs = await modelInputs(target, settings.headers);
    const request = benchRequest({
      baseUrl: target.url,
      grpcAddress: target.grpcAddress,
      model: target.model,
      protocol: settings.protocol,
      inputs,
      file: settings.inputFile,
      shapes: settings.shapes,
      headers: settings.headers,
    });
    const warnings: string[] = [...request.warnings];
    if (settings.protocol === 'grpc' && target.metricsUrl !== undefined) {
      // The server's kiln_requests_total counts its HTTP inference routes only; batches, queue and phases count gRPC too.
      warnings.push('the server counts gRPC requests in its batches but not in kiln_requests_total: its requests by status stay empty');
    }
    const levels: LevelResult[] = [];
    for (const concurrency of settings.concurrency) {
      levels.push(await runLevel(worker, target, request, settings, concurrency, warnings, io));
    }
    const report: BenchReport = {
      schemaVersion: 1,
      kilnVersion: CLI_VERSION,
      startedAt,
      target: {
        kind: target.kind,
        url: target.url,
        ...(target.archive === undefined ? {} : { archive: target.archive }),
        model: target.model,
        ...(request.grpc === undefined ? {} : { grpcAddress: target.grpcAddress }),
        ...(levels.some((l) => l.server !== null) ? { metricsUrl: target.metricsUrl } : {}),
      },
      protocol: settings.protocol,
      input: request.input,
      settings: {
        concurrency: settings.concurrency,
        ...(settings.requests === undefined ? { durationS: settings.durationS } : { requests: settings.requests }),
        warmupS: settings.warmupS,
        timeoutMs: settings.timeoutMs,
      },
      machine: {
        cpus: availableParallelism(),
        cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
        node: process.version,
        platform: `${process.platform}-${process.arch}`,
      },
      levels,
      warnings: [...new Set(warnings)],
    };
    io.stdout(renderText(report));
    if (settings.reportDir !== undefined) writeReport(resolve(io.cwd, settings.reportDir), report, io);
    const failed = levels.filter((l) => l.successes === 0);
    if (failed.length > 0) {
      throw cliError(
        'KILN_ERR_BENCH_FAILED',
        `no request succeeded at concurrency ${failed.map((l) => l.concurrency).join(', ')}: ${describeErrors(failed[0]!.errors)}`,
      );
    }
  } finally {
    await worker.terminate();
    await target.close();
  }
}

function writeReport(dir: string, report: BenchReport, io: CommandIO): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(join(dir, 'report.md'), renderMarkdown(report));
  writeFileSync(join(dir, 'report.html'), renderHtml(report));
  io.stderr(`report written to ${join(dir, 'report.html')} (and report.md, report.json)\n`);
}

function describeErrors(errors: Record<string, number>): string {
  return Object.entries(errors)
    .map(([status, n]) => `${n}× ${status}`)
    .join(', ');
}

/** One concurrency level: warm-up, a first reading of /metrics, the measured window, a second reading. */
async function runLevel(
  worker: Worker,
  target: Target,
  request: BenchRequest,
  settings: BenchSettings,
  concurrency: number,
  warnings: string[],
  io: CommandIO,
): Promise<LevelResult> {
  const job: LoadJob = {
    url: request.url,
    headers: request.headers,
    body: request.body,
    concurrency,
    warmupS: settings.warmupS,
    stop: { durationS: settings.requests === undefined ? settings.durationS : settings.maxLevelS, requests: settings.requests ?? Infinity },
    timeoutMs: settings.timeoutMs,
    ...(request.grpc === undefined ? {} : { grpc: { address: target.grpcAddress!, message: request.grpc } }),
  };
  const scrape = async (): Promise<Sample[] | undefined> => {
    if (target.metricsUrl === undefined) return undefined;
    const read = await readMetrics(target.metricsUrl, settings.headers);
    if ('text' in read) return parseMetrics(read.text);
    warnings.push(`server-side figures not available: ${read.problem} (set --metrics-url)`);
    return undefined;
  };
  const show = progressLine(io, concurrency, settings);
  let before: Sample[] | undefined;
  // However the server behaves, a level ends: warm-up, window, the slowest request's timeout, and a margin.
  const limitS = settings.warmupS + job.stop.durationS + settings.timeoutMs / 1000 + 30;
  const outcome = await new Promise<LevelOutcome>((resolve, reject) => {
    const deadline = setTimeout(() => {
      cleanup();
      reject(
        cliError(
          'KILN_ERR_BENCH_FAILED',
          `concurrency ${concurrency} did not finish within ${Math.round(limitS)} s; the server stopped answering`,
        ),
      );
    }, limitS * 1000);
    const onMessage = (message: FromWorker) => {
      if (message.type === 'progress') show(message.progress);
      else if (message.type === 'warm') {
        void scrape().then((samples) => {
          before = samples;
          worker.postMessage({ type: 'go' } satisfies ToWorker);
        });
      } else {
        cleanup();
        resolve(message.outcome);
      }
    };
    const onError = (error: Error) => {
      cleanup();
      reject(error);
    };
    const cleanup = () => {
      clearTimeout(deadline);
      worker.off('message', onMessage);
      worker.off('error', onError);
    };
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.postMessage({ type: 'level', job } satisfies ToWorker);
  });
  show(undefined);
  const after = before === undefined ? undefined : await scrape();
  if (settings.requests !== undefined && outcome.requests < settings.requests) {
    warnings.push(
      `concurrency ${concurrency} stopped after ${settings.maxLevelS} s with ${outcome.requests} of ${settings.requests} requests sent`,
    );
  }
  if (outcome.requests > outcome.successes) {
    warnings.push(
      `concurrency ${concurrency}: ${outcome.requests - outcome.successes} of ${outcome.requests} requests failed (${describeErrors(outcome.errors)})`,
    );
  }
  const level: LevelResult = {
    concurrency,
    requests: outcome.requests,
    successes: outcome.successes,
    errors: outcome.errors,
    durationS: outcome.durationS,
    throughput: outcome.durationS > 0 ? outcome.successes / outcome.durationS : 0,
    latencyMs: outcome.latencyMs,
    server: before !== undefined && after !== undefined ? breakdown(before, after, target.model) : null,
  };
  // One line per level as it ends, on a terminal (after the progress line) and in logs alike.
  const l = level.latencyMs;
  io.stderr(
    `c=${concurrency}: ${level.requests} requests, ${level.throughput.toFixed(1)}/s${l === null ? '' : `, p50 ${l.p50.toFixed(2)} ms, p99 ${l.p99.toFixed(2)} ms`}\n`,
  );
  return level;
}

/** On a terminal, one line that updates in place while a level runs; elsewhere nothing. */
function progressLine(io: CommandIO, concurrency: number, settings: BenchSettings): (progress: Progress | undefined) => void {
  if (!io.interactive) return () => {};
  return (progress) => {
    if (progress === undefined) return io.stderr('\r\x1b[K');
    const of =
      progress.phase === 'warmup'
        ? `warm-up ${progress.elapsedS.toFixed(1)}/${settings.warmupS} s`
        : settings.requests === undefined
          ? `${progress.elapsedS.toFixed(1)}/${settings.durationS} s, ${progress.done} answered`
          : `${progress.done}/${settings.requests} answered`;
    io.stderr(`\r\x1b[Kc=${concurrency}: ${of}${progress.errors > 0 ? `, ${progress.errors} errors` : ''}`);
  };
}
