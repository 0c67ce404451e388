import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../support/kiln.js';

export interface Instructions {
  /** The instruction (upper case) and its arguments, continuation lines joined. */
  all: { op: string; args: string }[];
  stages: { base: string; name: string | undefined; body: { op: string; args: string }[] }[];
  args: Map<string, string>;
}

/** The Dockerfile's instructions, per stage. */
export function readDockerfile(): Instructions {
  const text = readFileSync(join(REPO_ROOT, 'deploy/docker/Dockerfile'), 'utf8');
  const logical = text
    .split('\n')
    .filter((line) => !/^\s*#/.test(line))
    .join('\n')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .filter((line) => line.trim() !== '');
  const all = logical.map((line) => {
    const [, op, args] = /^\s*(\w+)\s+(.*)$/.exec(line)!;
    return { op: op!.toUpperCase(), args: args!.trim() };
  });
  const args = new Map<string, string>();
  const stages: Instructions['stages'] = [];
  for (const instruction of all) {
    if (instruction.op === 'ARG' && stages.length === 0) {
      const [name, value = ''] = instruction.args.split('=');
      args.set(name!, value);
    } else if (instruction.op === 'FROM') {
      const [, image, name] = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(instruction.args)!;
      stages.push({ base: image!.replace(/^\$\{(\w+)\}$/, (_, arg: string) => args.get(arg) ?? ''), name, body: [] });
    } else {
      stages.at(-1)?.body.push(instruction);
    }
  }
  return { all, stages, args };
}
