import { mkdirSync } from 'node:fs';
import { readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ServerLog } from './observability/logs.js';

/*
 * The server's work folder (a `kiln-server-*` folder under the system's temporary folder): marked
 * with its owner's pid, used as TMPDIR while the server runs, and cleaned after servers that were
 * killed before they could remove their own.
 */

/** The file in a work folder that names the server process it belongs to. */
const OWNER_FILE = 'server.pid';

/**
 * Removes the work folders (`kiln-server-*` beside this server's) of servers that are gone: killed
 * with SIGKILL, or by the OOM killer, they could not clean up. A folder whose server is still
 * running, or with no owner file, is left alone.
 */
export async function removeStaleWorkDirs(parent: string, log: ServerLog): Promise<void> {
  const removed: string[] = [];
  for (const entry of await readdir(parent).catch(() => [])) {
    if (!entry.startsWith('kiln-server-')) continue;
    const pid = Number((await readFile(join(parent, entry, OWNER_FILE), 'utf8').catch(() => '')).trim());
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid || isAlive(pid)) continue;
    await rm(join(parent, entry), { recursive: true, force: true }).then(
      () => removed.push(entry),
      () => {},
    );
  }
  if (removed.length > 0) log.info(`removed ${removed.length} work folder(s) left by servers that were killed: ${removed.join(', ')}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'; // someone else's process: alive
  }
}

/**
 * Points TMPDIR at a folder of the server's own, inside its work folder, so that what ONNX Runtime
 * writes there for every session (`.ses`, `mat-debug-<pid>.log`), and what handlers write to
 * os.tmpdir(), is removed when the server stops. Worker threads share the process's environment;
 * each worker process gets a folder of its own below this one. Returns the undo.
 */
export function useTmpdir(dir: string): () => void {
  mkdirSync(dir);
  const before = process.env.TMPDIR;
  process.env.TMPDIR = dir;
  return () => {
    if (process.env.TMPDIR !== dir) return; // changed since by someone else: theirs now
    if (before === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = before;
  };
}

/** Marks `workDir` as this process's, so that a later server can tell when it is left over. */
export async function claimWorkDir(workDir: string): Promise<void> {
  await writeFile(join(workDir, OWNER_FILE), `${process.pid}\n`);
}
