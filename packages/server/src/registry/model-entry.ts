import type { Manifest, ModelConfig } from '@kiln/handler-sdk';
import type { Batcher } from '../batching/batcher.js';
import type { WorkerPool } from '../pool/worker-pool.js';

export type ModelState = 'loading' | 'ready' | 'failed' | 'draining';

/** One registered model version and everything that serves it. */
export class ModelEntry {
  draining = false;
  loading = true;
  /** Why the model is not ready: a load error, or the pool's last worker failure. */
  loadError: string | undefined;
  manifest: Manifest | undefined;
  config: ModelConfig | undefined;
  modelDir: string | undefined;
  pool: WorkerPool | undefined;
  batcher: Batcher | undefined;
  readonly registeredAt = new Date();
  /** True for models given at start (--models), false for ones registered over the management API. */
  loadedAtStartup = false;

  constructor(
    readonly name: string,
    readonly version: string,
    /** Where the archive came from (a path in the model store, or given on the command line). */
    readonly archive: string,
  ) {}

  get state(): ModelState {
    if (this.draining) return 'draining';
    if (this.loading) return 'loading';
    return this.pool !== undefined && this.pool.serving ? 'ready' : 'failed';
  }

  /** Why the model cannot serve right now, for 503 messages and /ping. */
  get reason(): string {
    switch (this.state) {
      case 'loading':
        return 'it is still loading';
      case 'draining':
        return 'it is being unregistered';
      case 'failed':
        return `it has no working worker: ${this.loadError ?? this.pool?.lastError ?? 'unknown error'}`;
      default:
        return 'it is ready';
    }
  }
}
