import type { CommandSpec } from '../command-spec.js';
import { archiveCommand } from './archive/spec.js';
import { benchCommand } from './bench/spec.js';
import { doctorCommand } from './doctor/spec.js';
import { initCommand } from './init/spec.js';
import { inspectCommand } from './inspect/spec.js';
import { migrateCommand } from './migrate/spec.js';
import { predictCommand } from './predict/spec.js';
import { serveCommand } from './serve/spec.js';

/** Every command, in the order `kiln --help` lists them. */
export const COMMANDS: readonly CommandSpec[] = [
  initCommand,
  archiveCommand,
  inspectCommand,
  predictCommand,
  serveCommand,
  benchCommand,
  migrateCommand,
  doctorCommand,
];
