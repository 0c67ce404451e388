import { readFileSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { ConfigOverrides } from './load-version.js';

export const SNAPSHOT_FILE = 'snapshot.json';

/** One model version as the snapshot keeps it. */
export interface SnapshotModel {
  name: string;
  version: string;
  /**
   * `api`: registered over the management API from `url`, registered again at start.
   * `startup`: given with --models: its workers and default are restored when --models gives the same archive again.
   */
  source: 'api' | 'startup';
  /** The register call's `url`, resolved again at restore (the model store, or an allowed URL). */
  url?: string | undefined;
  /** The archive the version was loaded from. */
  archive: string;
  isDefault: boolean;
  minWorkers: number;
  maxWorkers: number;
  /** The register call's overrides (batch_size, max_batch_delay, response_timeout, startup_timeout). */
  overrides: ConfigOverrides;
}

export interface Snapshot {
  kiln: 'snapshot';
  format: 1;
  written: string;
  models: SnapshotModel[];
}

/**
 * The snapshot file in the server's state folder: what the management API changed, restored at the
 * next start. Each write replaces the file whole (a temporary file, then one rename), one write at a
 * time, the last one winning; a crash mid-write leaves the previous snapshot as it was.
 */
export class SnapshotFile {
  readonly path: string;
  private writing: Promise<void> = Promise.resolve();
  private next: Snapshot | undefined;

  constructor(
    private readonly dir: string,
    private readonly onError: (message: string) => void,
  ) {
    this.path = join(dir, SNAPSHOT_FILE);
  }

  /** The snapshot, or undefined when there is none; a file that cannot be read is reported and ignored. */
  read(): Snapshot | undefined {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT')
        this.onError(`cannot read the snapshot ${this.path}: ${(error as Error).message}`);
      return undefined;
    }
    try {
      const parsed = JSON.parse(text) as Partial<Snapshot>;
      if (parsed.kiln !== 'snapshot' || parsed.format !== 1 || !Array.isArray(parsed.models))
        throw new Error('it is not a Kiln snapshot of format 1');
      return parsed as Snapshot;
    } catch (error) {
      this.onError(`ignoring the snapshot ${this.path}: ${(error as Error).message}; it will be replaced at the next change`);
      return undefined;
    }
  }

  /** Writes `models` as the snapshot; resolves once it (or a later one) is on disk. Never rejects. */
  save(models: SnapshotModel[]): Promise<void> {
    const pending = this.next !== undefined;
    this.next = { kiln: 'snapshot', format: 1, written: new Date().toISOString(), models };
    if (pending) return this.writing; // the queued write takes the newest models
    this.writing = this.writing.then(async () => {
      const snapshot = this.next!;
      this.next = undefined;
      const temporary = `${this.path}.${process.pid}.tmp`;
      try {
        await mkdir(this.dir, { recursive: true });
        await writeFile(temporary, `${JSON.stringify(snapshot, null, 2)}\n`);
        await rename(temporary, this.path);
      } catch (error) {
        this.onError(
          `cannot write the snapshot ${this.path}: ${(error as Error).message}; the change is in effect, but a restart will not restore it`,
        );
      }
    });
    return this.writing;
  }
}

/** What a start restores from the snapshot, given the models on its command line. */
export interface RestorePlan {
  /** For each --models source, in order: the worker bounds the snapshot has for its archive. */
  startup: (ConfigOverrides | undefined)[];
  /** Versions registered over the management API, to register again. */
  api: (SnapshotModel & { url: string })[];
  /** The default version of each model, set once every version is loaded. */
  defaults: { name: string; version: string }[];
}

/**
 * Matches the snapshot against this start's --models: a source whose archive (and name, when
 * given) the snapshot has gets its workers back; a model registered over the API is registered
 * again unless --models gives its archive now. A startup model no longer on the command line is
 * not restored: the command line says what the server serves.
 */
export function restorePlan(snapshot: Snapshot | undefined, sources: readonly { name: string | undefined; path: string }[]): RestorePlan {
  const models = snapshot?.models ?? [];
  const same = (s: (typeof sources)[number], m: SnapshotModel) => resolve(s.path) === resolve(m.archive) && (s.name ?? m.name) === m.name;
  return {
    startup: sources.map((source) => {
      const saved = models.find((m) => m.source === 'startup' && same(source, m));
      return saved === undefined ? undefined : { minWorkers: saved.minWorkers, maxWorkers: saved.maxWorkers };
    }),
    api: models.filter(
      (m): m is SnapshotModel & { url: string } => m.source === 'api' && typeof m.url === 'string' && !sources.some((s) => same(s, m)),
    ),
    defaults: models.filter((m) => m.isDefault).map(({ name, version }) => ({ name, version })),
  };
}
