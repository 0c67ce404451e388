import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { archivePathProblem } from '@kiln/handler-sdk';
import type { ServerConfig } from '../config/server-config.js';
import { serverError } from '../errors.js';
import type { ModelEntry } from './model-entry.js';
import type { ModelRegistry } from './registry.js';
import { loadVersion, startVersion, stopVersion, type ConfigOverrides, type LoadContext } from './load-version.js';

/**
 * Registering, scaling and unregistering models: what the startup sequence and the management
 * API both do, in one place.
 */
export class ModelService {
  constructor(
    readonly registry: ModelRegistry,
    readonly config: ServerConfig,
    private readonly context: LoadContext,
  ) {}

  /**
   * Loads an archive and starts its workers. With `wait`, resolves once it is ready (or failed);
   * otherwise once it is registered, its workers starting in the background.
   */
  async register(path: string, name: string | undefined, overrides: ConfigOverrides = {}, wait = true): Promise<ModelEntry> {
    const entry = await loadVersion(path, name, this.context, overrides);
    try {
      this.registry.add(entry);
    } catch (error) {
      await stopVersion(entry, 0);
      throw error;
    }
    const started = startVersion(entry, this.context);
    if (wait) await started;
    return entry;
  }

  async unregister(entry: ModelEntry): Promise<void> {
    entry.draining = true;
    await stopVersion(entry, this.config.drainTimeoutMs);
    this.registry.remove(entry);
  }

  /**
   * Resolves a management API `url`: a file name in the model store, or a URL that matches an
   * allowedUrls pattern (http(s) ones are downloaded first). Anything else is refused.
   */
  async resolveUrl(url: string): Promise<string> {
    if (this.config.allowedUrls.some((pattern) => pattern.test(url))) {
      if (/^https?:\/\//.test(url)) return this.download(url);
      if (url.startsWith('file://')) return new URL(url).pathname;
      return url;
    }
    if (/^[a-z][a-z0-9+.-]*:/i.test(url) || archivePathProblem(url) !== undefined || url.includes('/')) {
      throw serverError('KILN_ERR_URL_NOT_ALLOWED', `url "${url}" is refused: give the file name of an archive in the model store, or add a pattern that matches it to allowedUrls`);
    }
    if (this.config.modelStore === undefined) {
      throw serverError('KILN_ERR_URL_NOT_ALLOWED', `url "${url}" names a file in the model store, but the server has no --model-store`);
    }
    const path = join(this.config.modelStore, url);
    if (!existsSync(path)) throw serverError('KILN_ERR_URL_NOT_ALLOWED', `url "${url}": no such archive in the model store ${this.config.modelStore}`);
    return path;
  }

  private async download(url: string): Promise<string> {
    const response = await fetch(url, { redirect: 'error' });
    if (!response.ok) throw serverError('KILN_ERR_URL_NOT_ALLOWED', `url "${url}" could not be downloaded: HTTP ${response.status}`);
    const dir = join(this.context.workDir, 'downloads');
    await mkdir(dir, { recursive: true });
    const path = join(dir, `${Date.now()}-${basename(new URL(url).pathname) || 'model.mar'}`);
    await writeFile(path, Buffer.from(await response.arrayBuffer()));
    return path;
  }
}
