import type { CommandIO } from '../../command-spec.js';

/** Below this many bytes an archive is written too fast for progress to be worth showing. */
const THRESHOLD = 32 * 1024 * 1024;
const INTERVAL_MS = 100;

export interface Progress {
  advance(bytes: number): void;
  done(): void;
}

const MiB = 1024 * 1024;

/** A one-line byte counter on stderr, shown only on a terminal and only for large archives. */
export function createProgress(io: CommandIO, total: number, enabled: boolean): Progress {
  if (!enabled || !io.interactive || total < THRESHOLD) return { advance() {}, done() {} };
  let written = 0;
  let last = 0;
  const draw = () => {
    const percent = Math.floor((written / total) * 100);
    io.stderr(`\rwriting ${(written / MiB).toFixed(0)} / ${(total / MiB).toFixed(0)} MiB (${percent}%)`);
  };
  return {
    advance(bytes) {
      written += bytes;
      const now = Date.now();
      if (now - last >= INTERVAL_MS) {
        last = now;
        draw();
      }
    },
    done() {
      draw();
      io.stderr('\n');
    },
  };
}
