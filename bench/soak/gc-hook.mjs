// Loaded into the soaked server's process only (`node --expose-gc --import bench/soak/gc-hook.mjs
// packages/cli/bin/kiln.js serve ...`; Kiln starts its worker processes with arguments of its own,
// so they do not load it). On SIGUSR2 it runs a full garbage collection and appends the V8 heap's
// figures to the file named by KILN_SOAK_GC_LOG. The soak sends it before each memory measurement,
// so RSS says what the server keeps, not how long ago V8 last collected. Kiln itself does not
// handle SIGUSR2, and a signal listener keeps no process alive.
import { appendFileSync } from 'node:fs';
import { getHeapSpaceStatistics, getHeapStatistics } from 'node:v8';

process.on('SIGUSR2', () => {
  globalThis.gc?.();
  const log = process.env.KILN_SOAK_GC_LOG;
  if (log === undefined) return;
  const heap = getHeapStatistics();
  const spaces = Object.fromEntries(getHeapSpaceStatistics().map((s) => [s.space_name, s.space_size]));
  appendFileSync(log, JSON.stringify({ usedHeap: heap.used_heap_size, totalHeap: heap.total_heap_size, spaces }) + '\n');
});
