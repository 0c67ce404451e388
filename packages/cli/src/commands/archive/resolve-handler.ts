import { existsSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { BUILTIN_HANDLERS, isBuiltinHandler } from '@kiln/handler-sdk/runtime';
import { cliError } from '../../errors.js';

export type HandlerChoice = { kind: 'builtin'; name: string } | { kind: 'file'; file: string; exportName: string | undefined };

const WITH_EXPORT = /^(.+\.(?:[cm]?[jt]s|tsx|jsx)):([A-Za-z_$][\w$]*)$/;

/** `image_classifier`, `src/handler.ts` or `src/handler.ts:MyHandler`. A file wins over a built-in name. */
export function resolveHandler(value: string, cwd: string): HandlerChoice {
  const direct = resolve(cwd, value);
  if (existsSync(direct)) return { kind: 'file', file: direct, exportName: undefined };
  if (isBuiltinHandler(value)) return { kind: 'builtin', name: value };
  const match = WITH_EXPORT.exec(value);
  if (match !== null && existsSync(resolve(cwd, match[1]!))) {
    return { kind: 'file', file: resolve(cwd, match[1]!), exportName: match[2]! };
  }
  const path = match?.[1] ?? value;
  throw cliError(
    'KILN_ERR_FILE_NOT_FOUND',
    `--handler ${value}: no such file ${relative(cwd, resolve(cwd, path)) || path}, and not a built-in handler (${BUILTIN_HANDLERS.join(', ')}); pass a .ts or .js file, optionally as file.ts:exportName`,
    { details: { flag: '--handler', path } },
  );
}
