import { join } from 'node:path';
import { Client, Metadata, credentials, type ClientDuplexStream, type ServiceDefinition, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { REPO_ROOT } from './kiln.js';

/*
 * A grpc-js client of a real `kiln serve`'s gRPC APIs, built from the .protos the server ships
 * (packages/server/proto): each RPC by name, answering its response or its error with Kiln's code.
 */

const PROTO_DIR = join(REPO_ROOT, 'packages/server/proto');
const OPTIONS = { includeDirs: [PROTO_DIR], keepCase: true, longs: Number, enums: String, defaults: false, arrays: true, oneofs: true };

/** A service of one of the shipped .protos, by its full name. */
export function serviceOf(protos: string | string[], name: string): ServiceDefinition {
  return loadSync(protos, OPTIONS)[name] as ServiceDefinition;
}

export const KSERVE_SERVICE = (): ServiceDefinition => serviceOf('grpc_service.proto', 'inference.GRPCInferenceService');
export const TS_INFERENCE_SERVICE = (): ServiceDefinition =>
  serviceOf('torchserve/inference.proto', 'org.pytorch.serve.grpc.inference.InferenceAPIsService');
export const TS_MANAGEMENT_SERVICE = (): ServiceDefinition =>
  serviceOf('torchserve/management.proto', 'org.pytorch.serve.grpc.management.ManagementAPIsService');

export type Reply<T> = { ok: true; response: T } | { ok: false; code: number; details: string; kilnCode: unknown };

const failed = (error: ServiceError) =>
  ({ ok: false, code: error.code, details: error.details, kilnCode: error.metadata.get('kiln-error-code')[0] }) as const;

export interface GrpcTestClient {
  call<T>(method: string, request: object, token?: string): Promise<Reply<T>>;
  /** A server stream's messages, or its error. */
  stream<T>(method: string, request: object, token?: string): Promise<Reply<T[]>>;
  /** A bidirectional stream, open. */
  bidi(method: string, token?: string): ClientDuplexStream<object, unknown>;
  close(): void;
}

export function grpcClient(address: string, service: ServiceDefinition): GrpcTestClient {
  const client = new Client(address, credentials.createInsecure());
  const metadataOf = (token: string | undefined) => {
    const metadata = new Metadata();
    if (token !== undefined) metadata.set('authorization', `Bearer ${token}`);
    return metadata;
  };
  const method = (name: string) => {
    const m = service[name];
    if (m === undefined) throw new Error(`the service has no method ${name}`);
    return m;
  };
  return {
    call: <T>(name: string, request: object, token?: string) => {
      const m = method(name);
      return new Promise<Reply<T>>((resolve) => {
        client.makeUnaryRequest(m.path, m.requestSerialize, m.responseDeserialize, request, metadataOf(token), (error, response?: T) =>
          resolve(error === null ? { ok: true, response: response! } : failed(error)),
        );
      });
    },
    stream: <T>(name: string, request: object, token?: string) => {
      const m = method(name);
      return new Promise<Reply<T[]>>((resolve) => {
        const messages: T[] = [];
        const call = client.makeServerStreamRequest(m.path, m.requestSerialize, m.responseDeserialize, request, metadataOf(token));
        call.on('data', (message: T) => messages.push(message));
        call.on('error', (error: ServiceError) => resolve(failed(error)));
        call.on('end', () => resolve({ ok: true, response: messages }));
      });
    },
    bidi: (name, token) => {
      const m = method(name);
      return client.makeBidiStreamRequest(m.path, m.requestSerialize, m.responseDeserialize, metadataOf(token));
    },
    close: () => client.close(),
  };
}

/** A KServe v2 tensor as grpc-js decodes it (`contents` holds the typed field that was set). */
export interface InferTensor {
  name: string;
  datatype: string;
  shape: number[];
  contents?: Record<string, unknown[]>;
}

/** ModelInferResponse as grpc-js decodes it. */
export interface InferResponse {
  model_name: string;
  model_version: string;
  id: string;
  outputs: InferTensor[];
  raw_output_contents: Buffer[];
}
