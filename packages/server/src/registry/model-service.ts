import { existsSync } from 'node:fs';
import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DEFAULT_LIMITS } from '../archive/preflight.js';
import { basename, join } from 'node:path';
import { archivePathProblem } from '@kiln/handler-sdk/runtime';
import type { ServerConfig } from '../config/server-config.js';
import { serverError } from '../errors.js';
import type { ModelVersion } from './model-version.js';
import type { ModelRegistry } from './registry.js';
import { loadVersion, type ConfigOverrides, type LoadContext } from './load-version.js';
import type { SnapshotFile, SnapshotModel } from './snapshot.js';

const DOWNLOAD_TIMEOUT_MS = 5 * 60_000;

const shuttingDown = () => serverError('KILN_ERR_SHUTTING_DOWN', 'the server is shutting down: no model is loaded or scaled any more');

/**
 * Registering, scaling and unregistering models: what the startup sequence and the management
 * API both do, in one place.
 */
export class ModelService {
  /** Registrations still unpacking or starting: close() waits for each to give up. */
  private readonly pending = new Set<Promise<unknown>>();
  private readonly stopping = new AbortController();
  /** Versions registered over the management API (or restored as such): their `url` and overrides. */
  private readonly fromApi = new WeakMap<ModelVersion, { url: string; overrides: ConfigOverrides }>();

  constructor(
    readonly registry: ModelRegistry,
    readonly config: ServerConfig,
    private readonly context: LoadContext,
    /** Where the management API's changes are written; undefined with --no-snapshot. */
    private readonly snapshot?: SnapshotFile,
  ) {
    this.context = { ...context, signal: this.stopping.signal };
  }

  /** True once close() was called: nothing registers, scales or starts after that. */
  get closed(): boolean {
    return this.stopping.signal.aborted;
  }

  /**
   * Loads an archive and starts its workers. With `wait`, resolves once it is ready (or failed);
   * otherwise once it is registered, its workers starting in the background. `onUnpacked` is
   * called once the archive is unpacked and checked, just before its workers are sent the model.
   */
  async register(
    path: string,
    name: string | undefined,
    overrides: ConfigOverrides = {},
    wait = true,
    onUnpacked?: () => void,
  ): Promise<ModelVersion> {
    if (this.closed) throw shuttingDown();
    const registering = this.load(path, name, overrides, wait, onUnpacked);
    this.pending.add(registering);
    const forget = () => this.pending.delete(registering);
    registering.then(forget, forget);
    return registering;
  }

  /**
   * Stops everything the service started: an archive still unpacking stops at its next entry and
   * is removed, a version still starting has its workers ended, and every registered version
   * stops (each busy worker finishing its batch). Resolves when no worker is left.
   */
  async close(): Promise<void> {
    if (!this.closed) this.stopping.abort(shuttingDown());
    // A version starting is registered already: stopping it ends its loading workers, which lets
    // its registration settle. One still unpacking settles when the abort reaches it.
    await Promise.all([...this.registry.all().map((version) => version.stop()), Promise.allSettled([...this.pending])]);
  }

  private async load(
    path: string,
    name: string | undefined,
    overrides: ConfigOverrides,
    wait: boolean,
    onUnpacked?: () => void,
  ): Promise<ModelVersion> {
    const { version, prestarted } = await loadVersion(path, name, this.context, overrides);
    onUnpacked?.();
    const metrics = await this.context.metrics;
    try {
      if (this.closed) throw shuttingDown(); // unpacked just as the server began to stop
      this.registry.add(version);
      if (metrics !== undefined) version.observe(metrics.forVersion(version.name, version.version));
    } catch (error) {
      await Promise.all([version.stop(), ...prestarted.workers.map((w) => w.stop(0))]);
      throw error;
    }
    // Waiting means every initial worker, not only the first.
    const started = version.start(prestarted, wait);
    if (wait) await started;
    return version;
  }

  /** Records that `version` was registered over the management API, for the snapshot. */
  registeredFromApi(version: ModelVersion, url: string, overrides: ConfigOverrides): void {
    this.fromApi.set(version, { url, overrides });
  }

  /**
   * Writes every registered version to the snapshot (after a change over the management API);
   * resolves once written. Never rejects: a failure to write is logged, and the change stands.
   */
  async saveSnapshot(): Promise<void> {
    if (this.snapshot === undefined) return;
    const models = this.registry
      .all()
      .filter((v) => v.state.kind !== 'draining' && v.state.kind !== 'stopped')
      .map((v): SnapshotModel => {
        const api = this.fromApi.get(v);
        return {
          name: v.name,
          version: v.version,
          source: api === undefined ? 'startup' : 'api',
          url: api?.url,
          archive: v.archive,
          isDefault: this.registry.defaultVersion(v.name) === v.version,
          minWorkers: v.config.minWorkers,
          maxWorkers: v.config.maxWorkers,
          overrides: api?.overrides ?? {},
        };
      });
    await this.snapshot.save(models);
  }

  /** Scales a version, unless the server is stopping. */
  scale(version: ModelVersion, minWorkers: number, maxWorkers: number): Promise<void> {
    if (this.closed) throw shuttingDown();
    return version.scale(minWorkers, maxWorkers);
  }

  /** Drains the version's queue (up to drainTimeout), stops its workers and forgets it. */
  async unregister(version: ModelVersion): Promise<void> {
    await version.drain(this.config.drainTimeoutMs);
    await version.stop();
    this.registry.remove(version);
  }

  /**
   * Resolves a management API `url`: a file name in the model store, or a URL that matches an
   * allowedUrls pattern (http(s) ones are downloaded first). Anything else is refused.
   */
  async resolveUrl(url: string): Promise<string> {
    // Climbing segments are refused outright, encoded or not: a pattern written for one folder
    // must not be escaped with `..` (the hole TorchServe closed in 0.11.0).
    if (/(^|[/\\])\.\.([/\\]|$)|%2e%2e|\\/i.test(url)) {
      throw serverError('KILN_ERR_URL_NOT_ALLOWED', `url "${url}" is refused: it climbs out of its folder with ".." or has a backslash`);
    }
    const parsed = /^(https?|file):\/\//i.test(url) ? new URL(url) : undefined;
    if (parsed !== undefined && this.config.allowedUrls.some((pattern) => pattern.test(parsed.href))) {
      return parsed.protocol === 'file:' ? decodeURIComponent(parsed.pathname) : this.download(parsed);
    }
    if (/^[a-z][a-z0-9+.-]*:/i.test(url) || archivePathProblem(url) !== undefined || url.includes('/')) {
      throw serverError(
        'KILN_ERR_URL_NOT_ALLOWED',
        `url "${url}" is refused: give the file name of an archive in the model store, or add a pattern that matches it to allowedUrls`,
      );
    }
    if (this.config.modelStore === undefined) {
      throw serverError('KILN_ERR_URL_NOT_ALLOWED', `url "${url}" names a file in the model store, but the server has no --model-store`);
    }
    const path = join(this.config.modelStore, url);
    if (!existsSync(path))
      throw serverError('KILN_ERR_URL_NOT_ALLOWED', `url "${url}": no such archive in the model store ${this.config.modelStore}`);
    return path;
  }

  /** Streams an allowed URL to a file, within the archive size limit and a time limit. */
  private async download(url: URL): Promise<string> {
    const response = await fetch(url, { redirect: 'error', signal: AbortSignal.timeout(DOWNLOAD_TIMEOUT_MS) });
    if (!response.ok || response.body === null)
      throw serverError('KILN_ERR_URL_NOT_ALLOWED', `url "${url.href}" could not be downloaded: HTTP ${response.status}`);
    const dir = join(this.context.workDir, 'downloads');
    await mkdir(dir, { recursive: true });
    const path = join(dir, `${Date.now()}-${basename(url.pathname) || 'model.mar'}`);
    let received = 0;
    const limit = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        received += chunk.length;
        if (received > DEFAULT_LIMITS.maxBytes)
          callback(serverError('KILN_ERR_ARCHIVE_LIMIT', `url "${url.href}" is larger than ${DEFAULT_LIMITS.maxBytes} bytes`));
        else callback(null, chunk);
      },
    });
    try {
      await pipeline(Readable.fromWeb(response.body as never), limit, createWriteStream(path));
    } catch (error) {
      await rm(path, { force: true });
      throw error;
    }
    return path;
  }
}
