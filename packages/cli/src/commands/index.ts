import type { CommandSpec } from '../command-spec.js';
import { archiveCommand } from './archive/spec.js';
import { inspectCommand } from './inspect/spec.js';

/** Every command, in the order `kiln --help` lists them. */
export const COMMANDS: readonly CommandSpec[] = [archiveCommand, inspectCommand];
