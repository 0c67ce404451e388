/**
 * The reliability catalogue's shared checks. Each case asserts the exact status (or exit code),
 * Kiln's error code and a message naming what was wrong; then that the server still answers a good
 * request, and that nothing is left behind: no process beyond the server and the workers it lists,
 * no file in its temporary folder beyond its registered models' and its own temp folder.
 */
import { afterAll, beforeAll, expect } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { filesUnder, processesUsing } from './hygiene.js';
import { linearExpected } from './onnx-models.js';
import { linearArchive, post, startKiln, until, type RunningKiln } from './server.js';

export interface CatalogueServer {
  kiln: RunningKiln;
  /** The server's TMPDIR: its work folder is the one `kiln-server-*` inside. */
  scratch: string;
  /** The folder with the `store/` model store (linear.mar is there). */
  dir: string;
}

/** An answer as the checks read it. */
export interface Answer {
  status: number;
  headers: Headers;
  text: string;
  json: Record<string, unknown>;
}

/**
 * Starts one server for a file's cases (beforeAll) and stops it cleanly (afterAll): `linear` is
 * served from the model store, with the model API on. `prepare` may add archives to `dir/store`.
 */
export function catalogueServer(
  options: { config?: string; args?: string[]; models?: string[]; prepare?: (dir: string) => void | Promise<void> } = {},
): () => CatalogueServer {
  let server: CatalogueServer | undefined;
  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kiln-catalogue-'));
    const scratch = mkdtempSync(join(tmpdir(), 'kiln-tmpdir-'));
    linearArchive(dir, 'linear', options.config ?? 'batchSize: 1\n');
    await options.prepare?.(dir);
    const kiln = await startKiln(
      ['--model-store', 'store', '--enable-model-api', ...(options.args ?? []), '--models', 'linear=linear.mar', ...(options.models ?? [])],
      {
        cwd: dir,
        env: { TMPDIR: scratch },
        shared: true,
      },
    );
    server = { kiln, scratch, dir };
  }, 60_000);
  afterAll(async () => {
    if (server === undefined) return;
    // The server stops cleanly after everything the file threw at it.
    expect(await server.kiln.stop('SIGTERM')).toBe(0);
    await until(() => processesUsing(server!.scratch).length === 0, 10_000);
    expect(filesUnder(server.scratch)).toEqual([]);
    rmSync(server.dir, { recursive: true, force: true });
    rmSync(server.scratch, { recursive: true, force: true });
  }, 60_000);
  return () => server!;
}

/** Reads a response whatever its body. */
export async function answer(response: Response): Promise<Answer> {
  const text = await response.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // not JSON: the checks say so
  }
  return { status: response.status, headers: response.headers, text, json };
}

/** The exact status, Kiln's code, and a message that names the fault (`error` in KServe's shape). */
export function expectRefusal(got: Answer, status: number, code: string, message: RegExp | string): void {
  const said = String(got.json.message ?? got.json.error ?? '');
  expect({ status: got.status, code: got.json.errorCode }, got.text).toEqual({ status, code });
  if (typeof message === 'string') expect(said).toContain(message);
  else expect(said).toMatch(message);
}

/** The server still answers a good request, correctly, and has nothing left over (`extraModels`: other registered names). */
export async function expectStillServing(server: CatalogueServer, extraModels: string[] = []): Promise<void> {
  const good = await post(`${server.kiln.inference}/predictions/linear`, { row: [1, 2, 3, 4] });
  expect(good.status, good.text).toBe(200);
  expect(good.json.y).toEqual(linearExpected([1, 2, 3, 4]).map(Math.fround));
  await expectNothingLeft(server, extraModels);
}

/** Only the server and the workers it lists run; only registered models' folders and temp folders exist. */
export async function expectNothingLeft(server: CatalogueServer, extraModels: string[] = []): Promise<void> {
  const { kiln, scratch } = server;
  const listed = async () => [kiln.child.pid!, ...(await workerPids(kiln))].sort().join();
  await until(async () => processesUsing(scratch).sort().join() === (await listed()), 10_000).catch(() => {});
  expect(processesUsing(scratch).sort().join(), 'processes beyond the server and its listed workers').toBe(await listed());
  const allowed = new RegExp(
    `^kiln-server-\\w+(/server\\.pid|/models|/staging|/tmp(/.*)?|/models/(${['linear', ...extraModels].join('|')})-[0-9a-f]+(/.*)?)?$`,
  );
  expect(filesUnder(scratch).filter((f) => !allowed.test(f))).toEqual([]);
}

/** Worker pids of every registered model version. */
export async function workerPids(kiln: RunningKiln): Promise<number[]> {
  const { models } = (await (await fetch(`${kiln.management}/models?limit=100`)).json()) as { models: { modelName: string }[] };
  const described = await Promise.all(
    models.map(
      async (m) => (await (await fetch(`${kiln.management}/models/${m.modelName}/all`)).json()) as { workers: { pid: number }[] }[],
    ),
  );
  // A thread worker reports the server's own pid.
  return [...new Set(described.flat().flatMap((v) => v.workers.map((w) => w.pid)))].filter((pid) => pid !== kiln.child.pid);
}
