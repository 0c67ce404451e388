/**
 * Cleanup to run if the process is interrupted (Ctrl-C, SIGTERM) while a command holds temporary
 * files, so an interrupted `kiln archive` leaves neither a half-written archive nor its temp file.
 */
const cleanups = new Set<() => void>();
let installed = false;

function onSignal(signal: NodeJS.Signals): void {
  for (const cleanup of cleanups) {
    try {
      cleanup();
    } catch {
      // Best effort: the process is going away.
    }
  }
  process.exit(signal === 'SIGINT' ? 130 : 143);
}

/** Registers a synchronous cleanup; call the returned function once it is no longer needed. */
export function onInterrupt(cleanup: () => void): () => void {
  if (!installed) {
    installed = true;
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  }
  cleanups.add(cleanup);
  return () => cleanups.delete(cleanup);
}
