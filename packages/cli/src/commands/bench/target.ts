/*
 * What `kiln bench` loads: a server that is already running (a URL), or an archive that it serves
 * itself, in this process, on free loopback ports. Either way the rest of the bench sees one base
 * URL, one model name and, where it can be read, the metrics URL (and, for `grpc`, the gRPC address).
 */
import { cliError } from '../../errors.js';
import type { InputSpec } from './bench-request.js';
import type { BenchProtocol } from './report-types.js';

export interface Target {
  kind: 'url' | 'archive';
  /** The inference API, without a trailing slash. */
  url: string;
  archive?: string;
  model: string;
  metricsUrl: string | undefined;
  /** The KServe v2 gRPC address (host:port), for protocol `grpc`. */
  grpcAddress: string | undefined;
  close(): Promise<void>;
}

export interface TargetOptions {
  model: string | undefined;
  metricsUrl: string | undefined;
  protocol: BenchProtocol;
  /** --grpc-address, for a URL target with protocol `grpc`. */
  grpcAddress: string | undefined;
  cwd: string;
  warn: (message: string) => void;
}

export function isUrl(target: string): boolean {
  return /^https?:\/\//i.test(target);
}

export async function openTarget(target: string, options: TargetOptions): Promise<Target> {
  if (isUrl(target)) {
    if (options.model === undefined) {
      throw cliError(
        'KILN_ERR_USAGE',
        `--model is required with a server URL: name the model to load, e.g. kiln bench ${target} --model resnet`,
      );
    }
    const url = new URL(target);
    // Kiln's default layout: inference on 8080, metrics on 8082, on the same host.
    const metricsUrl = options.metricsUrl ?? `${url.protocol}//${url.hostname}:8082/metrics`;
    // …and KServe v2's gRPC on 8085.
    const grpcAddress = options.protocol === 'grpc' ? (options.grpcAddress ?? `${url.hostname}:8085`) : undefined;
    return { kind: 'url', url: target.replace(/\/+$/, ''), model: options.model, metricsUrl, grpcAddress, close: async () => {} };
  }
  return serveArchive(target, options);
}

/**
 * Serves the archive with the server's defaults, but on free ports: nothing else on this machine is
 * disturbed. The gRPC API is started only for protocol `grpc`.
 */
async function serveArchive(archive: string, options: TargetOptions): Promise<Target> {
  if (options.grpcAddress !== undefined) options.warn(`--grpc-address ${options.grpcAddress} ignored: kiln bench serves ${archive} itself`);
  const { resolveServerConfig, startServer } = await import('@kiln/server');
  const config = resolveServerConfig({
    flags: {
      models: [archive],
      inferenceAddress: 'http://127.0.0.1:0',
      managementAddress: 'http://127.0.0.1:0',
      metricsAddress: 'http://127.0.0.1:0',
      grpcAddress: options.protocol === 'grpc' ? '127.0.0.1:0' : 'off',
      tsGrpcInferenceAddress: 'off',
      tsGrpcManagementAddress: 'off',
    },
    env: {},
    file: undefined,
    cwd: options.cwd,
  });
  const errors: string[] = [];
  const server = await startServer(config, { info: () => {}, warn: options.warn, error: (m) => errors.push(m) });
  const [model] = await server.loaded;
  if (model === undefined) {
    await server.close();
    throw cliError('KILN_ERR_BENCH_TARGET', `${archive} could not be served: ${errors.join('; ') || 'the model did not load'}`);
  }
  if (options.model !== undefined && options.model !== model.name)
    options.warn(`--model ${options.model} ignored: ${archive} serves "${model.name}"`);
  return {
    kind: 'archive',
    url: server.addresses.inference,
    archive,
    model: model.name,
    metricsUrl: `${server.addresses.metrics}/metrics`,
    grpcAddress: server.grpcAddress,
    close: () => server.close(),
  };
}

/** The model's inputs, from its KServe v2 metadata; also proves the server is there and serves the model. */
export async function modelInputs(target: Target, headers: Record<string, string>): Promise<InputSpec[]> {
  const url = `${target.url}/v2/models/${encodeURIComponent(target.model)}`;
  let response: Response;
  try {
    response = await fetch(url, { headers, signal: AbortSignal.timeout(10_000) });
  } catch (error) {
    const cause = reason(error);
    throw cliError(
      'KILN_ERR_BENCH_TARGET',
      `could not reach ${target.url} (${cause}): is the server running, and is this its inference address?`,
    );
  }
  const text = await response.text();
  if (!response.ok) {
    throw cliError(
      'KILN_ERR_BENCH_TARGET',
      `${url} answered ${response.status}: ${text.slice(0, 300)}${response.status === 404 ? ' (is the model name right?)' : ''}`,
    );
  }
  const metadata = JSON.parse(text) as { inputs?: InputSpec[] };
  return metadata.inputs ?? [];
}

/** The server's metrics text, or undefined (with the reason) when they cannot be read. */
export async function readMetrics(url: string, headers: Record<string, string>): Promise<{ text: string } | { problem: string }> {
  try {
    const response = await fetch(url, { headers, signal: AbortSignal.timeout(10_000) });
    if (!response.ok) return { problem: `${url} answered ${response.status}` };
    return { text: await response.text() };
  } catch (error) {
    return { problem: `${url} could not be read (${reason(error)})` };
  }
}

/** Why fetch failed: undici puts the socket's error code (ECONNREFUSED) or message in `cause`. */
function reason(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (error as Error).message;
}
