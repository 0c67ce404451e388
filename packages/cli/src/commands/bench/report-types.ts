/*
 * What `kiln bench` measures, as report.json holds it. report.md and report.html are rendered from
 * this and nothing else, so the three files cannot disagree.
 */

export const BENCH_PROTOCOLS = ['torchserve', 'v2-json', 'v2-binary', 'grpc'] as const;
export type BenchProtocol = (typeof BENCH_PROTOCOLS)[number];

export interface BenchReport {
  /** Bumped when a field changes meaning; readers check it. */
  schemaVersion: 1;
  kilnVersion: string;
  /** ISO 8601, when the run started. */
  startedAt: string;
  target: {
    /** `url`: a server that was already running. `archive`: served by `kiln bench` itself, on free ports. */
    kind: 'url' | 'archive';
    /** The inference API's base URL, e.g. http://127.0.0.1:8080. */
    url: string;
    /** The archive path, for kind `archive`. */
    archive?: string;
    model: string;
    /** Where the server-side figures were read, or undefined when they could not be. */
    metricsUrl?: string;
    /** The KServe v2 gRPC address (host:port) the requests went to, for protocol `grpc`. */
    grpcAddress?: string;
  };
  protocol: BenchProtocol;
  input: {
    source: 'file' | 'generated';
    /** The file, for source `file`. */
    file?: string;
    /** The request body's size in bytes; for `grpc`, the tensors' raw bytes (raw_input_contents). */
    bytes: number;
    /** One line, e.g. `input "x" FP32 [1, 3, 224, 224], pseudo-random in [-1, 1)`. */
    description: string;
  };
  settings: {
    concurrency: number[];
    /** Seconds of load per concurrency level (after the warm-up); undefined with `requests`. */
    durationS?: number;
    /** Requests per concurrency level (after the warm-up); undefined with `durationS`. */
    requests?: number;
    warmupS: number;
    timeoutMs: number;
  };
  machine: { cpus: number; cpuModel: string; node: string; platform: string };
  levels: LevelResult[];
  /** Anything the reader should know: requests that failed, figures that could not be read. */
  warnings: string[];
}

/** One concurrency level: `concurrency` clients, each sending its next request when the last is answered. */
export interface LevelResult {
  concurrency: number;
  /** Requests sent and answered (or failed) in the measured window: always successes + the sum of errors. */
  requests: number;
  /** Answers with status 200. */
  successes: number;
  /** Failures by HTTP status ("503"), by gRPC status ("grpc-UNAVAILABLE"), or by what went wrong without one ("timeout", "ECONNREFUSED"). */
  errors: Record<string, number>;
  /** Seconds from the first request sent to the last answer received. */
  durationS: number;
  /** Successes per second. */
  throughput: number;
  /** Client-side latency of the successes, in milliseconds; null when none succeeded. */
  latencyMs: LatencySummary | null;
  /** What the server says happened in the same window, from its /metrics; null when it could not be read. */
  server: ServerBreakdown | null;
}

export interface LatencySummary {
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** Differences of the server's counters between the start and the end of a level. */
export interface ServerBreakdown {
  /** kiln_requests_total by status. */
  requests: Record<string, number>;
  /** Batches sent to workers (kiln_batches_total), the sum of `batchSizes`. */
  batches: number;
  /** Batches by size: { "1": 120, "8": 40 }. */
  batchSizes: Record<string, number>;
  /** Requests per batch, on average. */
  meanBatchSize: number;
  /** Mean milliseconds a request waited in the queue before its batch was sent (kiln_queue_seconds). */
  queueMs: number | null;
  /**
   * Mean milliseconds per batch in each phase (kiln_batch_seconds): preprocess, inference and
   * postprocess as the worker's handler timed them (absent when the handler does not report them),
   * and `total`, from the batch being sent to its results arriving back.
   */
  batchMs: { preprocess?: number; inference?: number; postprocess?: number; total: number } | null;
}
