import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Metadata, credentials, status as grpcStatus, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { REPO_ROOT, kiln as runKiln } from '../support/kiln.js';
import { linearModel, writeModel } from '../support/onnx-models.js';
import { startKiln, type RunningKiln } from '../support/server.js';

/*
 * The grpcurl examples of docs/reference/grpc.md, run. grpcurl is not installed here, so each
 * example's request goes through grpc-js with the protobuf JSON mapping grpcurl uses (bytes as
 * base64, 64-bit integers as strings, lowerCamelCase names in answers, empty fields left out), and
 * the answer must be the one the page shows.
 */

const TOKEN = 'grpc-docs-token-0123456789abcdef';
const page = readFileSync(join(REPO_ROOT, 'docs/reference/grpc.md'), 'utf8');
const section = page.slice(page.indexOf('## grpcurl'), page.indexOf("## TorchServe's gRPC APIs"));
const service = loadSync(join(REPO_ROOT, 'packages/server/proto/grpc_service.proto'), {
  keepCase: true,
  longs: String,
  enums: String,
  bytes: String,
  defaults: false,
  oneofs: true,
})['inference.GRPCInferenceService'] as Record<
  string,
  { path: string; requestSerialize: (v: object) => Buffer; responseDeserialize: (b: Buffer) => object }
>;

interface Example {
  command: string;
  method: string;
  request: object;
  token: boolean;
  /** The JSON answer the page shows, or, for a failed call, its trailers and error lines. */
  output: string;
}

/** Each `$ grpcurl ...` of the section (continued lines joined), with the lines printed after it. */
function examples(): Example[] {
  const found: Example[] = [];
  for (const block of section.matchAll(/```\n([\s\S]*?)```/g)) {
    const lines = block[1]!.split('\n');
    for (let i = 0; i < lines.length; i++) {
      if (!lines[i]!.startsWith('$ grpcurl')) continue;
      let command = lines[i]!;
      while (command.endsWith('\\') || !/inference\.GRPCInferenceService\/\w+/.test(command))
        command = `${command.replace(/\\$/, '')} ${lines[++i]!.trim()}`;
      const output: string[] = [];
      while (i + 1 < lines.length && !lines[i + 1]!.startsWith('$ ')) output.push(lines[++i]!);
      const data = /-d '([\s\S]*?)'/.exec(command)?.[1];
      found.push({
        command,
        method: /inference\.GRPCInferenceService\/(\w+)/.exec(command)![1]!,
        request: data === undefined ? {} : (JSON.parse(data) as object),
        token: command.includes('authorization: Bearer'),
        output: output.join('\n').trim(),
      });
    }
  }
  return found;
}

/** As the protobuf JSON mapping prints a message: `model_name` → `modelName`, fields at their default ("") left out. */
function camel(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(camel);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([, v]) => v !== '')
      .map(([key, v]) => [key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()), camel(v)]),
  );
}

let dir: string;
let open: RunningKiln;
let guarded: RunningKiln;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kiln-grpc-docs-'));
  writeModel(dir, 'linear.onnx', linearModel());
  const archived = runKiln(
    ['archive', '--model-name', 'linear', '-v', '1', '--serialized-file', 'linear.onnx', '--handler', 'tensor', '--export-path', 'store'],
    { cwd: dir },
  );
  expect(archived.status).toBe(0);
  const args = ['--model-store', 'store', '--models', 'linear=linear.mar'];
  [open, guarded] = await Promise.all([
    startKiln(args, { cwd: dir, shared: true }),
    startKiln([...args, '--state-dir', join(dir, 'guarded')], { cwd: dir, shared: true, env: { KILN_TOKEN: TOKEN } }),
  ]);
});
afterAll(async () => {
  await Promise.all([open?.stop('SIGKILL'), guarded?.stop('SIGKILL')]);
  rmSync(dir, { recursive: true, force: true });
});

test('the page has its five grpcurl examples', () => {
  expect(examples().map((e) => e.method)).toEqual(['ServerReady', 'ModelMetadata', 'ModelInfer', 'ModelInfer', 'ModelInfer']);
});

test.each(examples().map((e, i) => [i + 1, e.method, e] as const))(
  'example %i (%s) answers what the page shows',
  async (_n, method, example) => {
    const server = example.token ? guarded : open;
    const client = new Client(server.grpc!, credentials.createInsecure());
    const metadata = new Metadata();
    if (example.token) metadata.set('authorization', `Bearer ${TOKEN}`);
    const m = service[method]!;
    try {
      const answer = await new Promise<{ response?: object; error?: ServiceError }>((resolve) =>
        client.makeUnaryRequest(m.path, m.requestSerialize, m.responseDeserialize, example.request, metadata, (error, response) =>
          resolve(error === null ? { response: response! } : { error }),
        ),
      );
      if (answer.error === undefined) {
        expect(camel(answer.response)).toEqual(JSON.parse(example.output));
        return;
      }
      // A failed call: the trailers and the error lines grpcurl -v prints.
      const { error } = answer;
      const codeName = Object.entries(grpcStatus).find(([, code]) => code === error.code)![0];
      const pascal = codeName.toLowerCase().replace(/(^|_)([a-z])/g, (_, _s: string, c: string) => c.toUpperCase());
      expect(example.output).toContain(`kiln-error-code: ${String(error.metadata.get('kiln-error-code')[0])}`);
      expect(example.output).toContain(`Code: ${pascal}`);
      expect(example.output).toContain(`Message: ${error.details}`);
    } finally {
      client.close();
    }
  },
);
