import { cliError } from '../../errors.js';
import type { ParsedOptions } from '../../util/parsed.js';
import { BENCH_PROTOCOLS, type BenchProtocol } from './report-types.js';

/** The longest a level runs with --requests, so that every run ends. */
export const MAX_LEVEL_S = 600;

export interface BenchSettings {
  protocol: BenchProtocol;
  concurrency: number[];
  durationS: number;
  requests: number | undefined;
  maxLevelS: number;
  warmupS: number;
  timeoutMs: number;
  inputFile: string | undefined;
  shapes: Record<string, number[]>;
  headers: Record<string, string>;
  reportDir: string | undefined;
  /** --grpc-address: where to send `grpc` requests to a URL target. */
  grpcAddress: string | undefined;
}

/** The options, checked: each problem is a usage error that names the flag and what it received. */
export function benchSettings(options: ParsedOptions): BenchSettings {
  const durationGiven = options.optionalString('duration');
  const requestsGiven = options.optionalString('requests');
  if (durationGiven !== undefined && requestsGiven !== undefined) {
    throw cliError('KILN_ERR_USAGE', '--duration and --requests both end a level: give one of them');
  }
  const protocol = options.choice('protocol', BENCH_PROTOCOLS);
  const grpcAddress = options.optionalString('grpcAddress');
  if (grpcAddress !== undefined && protocol !== 'grpc') {
    throw cliError('KILN_ERR_USAGE', `--grpc-address is where --protocol grpc sends its requests: add --protocol grpc, or leave it out`);
  }
  if (grpcAddress !== undefined && !/^(\[[0-9a-fA-F:.]+\]|[^:\s]+):\d+$/.test(grpcAddress)) {
    throw cliError('KILN_ERR_USAGE', `--grpc-address takes host:port, e.g. 127.0.0.1:8085, received "${grpcAddress}"`);
  }
  return {
    protocol,
    grpcAddress,
    concurrency: options
      .string('concurrency')
      .split(',')
      .map((c) => positiveInteger('--concurrency', c.trim(), 'a comma-separated list of client counts, e.g. 1,4,16,64')),
    durationS: positiveNumber('--duration', durationGiven ?? '10'),
    requests: requestsGiven === undefined ? undefined : positiveInteger('--requests', requestsGiven),
    maxLevelS: MAX_LEVEL_S,
    warmupS: nonNegativeNumber('--warmup', options.string('warmup')),
    timeoutMs: positiveInteger('--timeout', options.string('timeout')),
    inputFile: options.optionalString('input'),
    shapes: Object.fromEntries((options.optionalList('shape') ?? []).map(parseShape)),
    headers: Object.fromEntries((options.optionalList('header') ?? []).map(parseHeader)),
    reportDir: options.optionalString('report'),
  };
}

function positiveInteger(flag: string, text: string, expected = 'a whole number above 0'): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0) throw cliError('KILN_ERR_USAGE', `${flag} must be ${expected}, received "${text}"`);
  return n;
}

function positiveNumber(flag: string, text: string): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) throw cliError('KILN_ERR_USAGE', `${flag} must be a number of seconds above 0, received "${text}"`);
  return n;
}

function nonNegativeNumber(flag: string, text: string): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0) throw cliError('KILN_ERR_USAGE', `${flag} must be a number of seconds, 0 or more, received "${text}"`);
  return n;
}

/** `x=1,3,224,224` → ['x', [1, 3, 224, 224]]. */
function parseShape(text: string): [string, number[]] {
  const at = text.lastIndexOf('=');
  const dims = text.slice(at + 1).split(/[,x×]/);
  if (at <= 0 || dims.some((d) => !/^\d+$/.test(d.trim()))) {
    throw cliError('KILN_ERR_USAGE', `--shape takes NAME=DIMS, e.g. input=1,3,224,224, received "${text}"`);
  }
  return [text.slice(0, at), dims.map(Number)];
}

/** `Authorization: Bearer x` → ['authorization', 'Bearer x']. */
function parseHeader(text: string): [string, string] {
  const at = text.indexOf(':');
  if (at <= 0) throw cliError('KILN_ERR_USAGE', `--header takes "Name: value", received "${text}"`);
  return [text.slice(0, at).trim().toLowerCase(), text.slice(at + 1).trim()];
}
