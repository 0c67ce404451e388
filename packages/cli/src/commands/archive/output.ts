import { existsSync, rmSync, statSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import { randomBytes } from 'node:crypto';
import { cliError } from '../../errors.js';
import { onInterrupt } from '../../interrupt.js';

/**
 * The archive is written to a temporary name beside its target and renamed into place only when
 * complete, so a failed or interrupted run never leaves a half-written archive under the real name.
 */
export class AtomicOutput {
  readonly temp: string;
  private readonly disarm: () => void;

  private constructor(readonly target: string) {
    this.temp = join(dirname(target), `.${basename(target)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
    this.disarm = onInterrupt(() => rmSync(this.temp, { recursive: true, force: true }));
  }

  /** Checks the export folder and the target, creating the folder when missing. */
  static async open(exportPath: string, target: string, force: boolean, cwd: string): Promise<AtomicOutput> {
    if (existsSync(exportPath) && !statSync(exportPath).isDirectory()) {
      throw cliError(
        'KILN_ERR_EXPORT_PATH_NOT_DIR',
        `--export-path ${relative(cwd, exportPath)} is a file; pass a folder (it is created if missing)`,
        {
          details: { path: exportPath },
        },
      );
    }
    if (existsSync(target) && !force) {
      throw cliError(
        'KILN_ERR_OUTPUT_EXISTS',
        `${relative(cwd, target) || target} already exists; pass --force (-f) to overwrite it, or choose another --export-path`,
        {
          details: { path: target },
        },
      );
    }
    await mkdir(exportPath, { recursive: true });
    return new AtomicOutput(target);
  }

  /** Moves the finished temp file or folder into place, replacing what was there. */
  async commit(): Promise<void> {
    try {
      if (existsSync(this.target) && statSync(this.target).isDirectory()) {
        // rename() cannot replace a non-empty folder: move the old one aside first.
        const old = `${this.temp}.old`;
        await rename(this.target, old);
        await rename(this.temp, this.target);
        await rm(old, { recursive: true, force: true });
      } else {
        await rename(this.temp, this.target);
      }
    } finally {
      this.disarm();
    }
  }

  async discard(): Promise<void> {
    await rm(this.temp, { recursive: true, force: true });
    this.disarm();
  }
}
