// A process's descendants from /proc, and killing them all: shared by bench:compare and the soak.
import { readdirSync, readFileSync } from 'node:fs';

/** All descendants of a pid, deepest last, from the ppid field of /proc/N/stat. */
export function descendants(pid) {
  const children = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      // The command name may hold spaces and parentheses: the ppid is the 2nd field after the last ')'.
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(name));
    } catch {
      // The process ended while we looked.
    }
  }
  const out = [];
  const walk = (p) => {
    for (const c of children.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

/** Kills a process and everything below it, now (SIGKILL). Synchronous, for 'exit' handlers. */
export function killTree(pid) {
  if (pid === undefined) return;
  let pids = [];
  try {
    pids = descendants(pid);
  } catch {
    /* /proc unreadable: the pid alone */
  }
  for (const p of [pid, ...pids]) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}
