/** One line of the access log: no body and no header value ever goes in one. */
export interface AccessRecord {
  requestId: string;
  remoteAddress: string;
  method: string;
  path: string;
  model: string | undefined;
  version: string | undefined;
  status: number;
  /** The gRPC status code, for a gRPC call (whose `status` is the HTTP status of the same outcome). */
  grpcStatus?: number | undefined;
  errorCode: string | undefined;
  bytesIn: number;
  bytesOut: number;
  queueMs: number | undefined;
  batchSize: number | undefined;
  totalMs: number;
}
