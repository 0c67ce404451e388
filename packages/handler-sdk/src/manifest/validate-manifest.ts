import { sdkError } from '../errors/codes.js';
import { compileSchema, formatErrors } from '../schema/ajv.js';
import { BUILTIN_HANDLERS, isBuiltinHandler } from '../builtin-handlers.js';
import { MANIFEST_PATH, type Manifest } from './manifest.js';
import { manifestSchema } from './manifest-schema.js';
import { deepFreeze } from '../util/deep-freeze.js';

const validate = compileSchema<Manifest>(manifestSchema, new URL('../schema/compiled/manifest.cjs', import.meta.url));

/** Checks a parsed manifest against the schema and its own file list; returns it deeply frozen. */
export function validateManifest(value: unknown, source = MANIFEST_PATH): Manifest {
  const problems = validate(value) ? crossCheck(value) : formatErrors(validate.errors ?? []);
  if (problems.length > 0) {
    throw sdkError('KILN_ERR_MANIFEST_INVALID', `${source} is not a valid Kiln manifest:\n  ${problems.join('\n  ')}`, {
      details: { source, problems },
    });
  }
  return deepFreeze(value as Manifest);
}

/** Parses manifest bytes (as read from an archive) and validates them. */
export function parseManifest(bytes: Uint8Array | string, source = MANIFEST_PATH): Manifest {
  const text = typeof bytes === 'string' ? bytes : Buffer.from(bytes).toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw sdkError('KILN_ERR_MANIFEST_INVALID', `${source} is not JSON: ${(error as Error).message}`, {
      cause: error,
      details: { source },
    });
  }
  return validateManifest(value, source);
}

function crossCheck(manifest: Manifest): string[] {
  const problems: string[] = [];
  const listed = (field: string, file: string | undefined) => {
    if (file !== undefined && !(file in manifest.files)) problems.push(`${field}: "${file}" is not in files`);
  };
  listed('model.serializedFile', manifest.model.serializedFile);
  listed('model.configFile', manifest.model.configFile);
  // The handler is code the worker imports: a built-in by name, or a file of this archive (listed,
  // so its path is safe and its hash was checked as it was unpacked). Nothing else is ever imported.
  const handlerFile = manifest.model.handler.split(':')[0]!;
  if (!isBuiltinHandler(handlerFile) && !(handlerFile in manifest.files)) {
    problems.push(`model.handler: "${handlerFile}" is neither a built-in handler (${BUILTIN_HANDLERS.join(', ')}) nor a file in files`);
  }
  if (manifest.model.serializedFile !== undefined && manifest.signature === undefined) {
    problems.push('signature: required when model.serializedFile is set');
  }
  for (const path of Object.keys(manifest.files)) {
    if (!isSafeArchivePath(path)) problems.push(`files: "${path}" is not a safe archive path`);
    else if (path.startsWith('MAR-INF/')) problems.push(`files: "${path}" is inside MAR-INF/, which is reserved for the manifest`);
  }
  return problems;
}

/** Why a path may not be stored in an archive, or undefined when it may. */
export function archivePathProblem(path: string): string | undefined {
  if (path === '') return 'its path is empty';
  if (path.startsWith('/') || /^[A-Za-z]:/.test(path)) return 'its path is absolute';
  if (path.includes('\\')) return 'its path has a backslash';
  if (path.includes('\0')) return 'its path has a NUL byte';
  const segments = path.split('/');
  if (segments.includes('..')) return 'its path climbs out with `..`';
  if (segments.some((s) => s === '' || s === '.')) return 'its path has an empty or `.` segment';
  return undefined;
}

/** A relative POSIX path with no empty, `.` or `..` segment, no backslash and no NUL. */
export function isSafeArchivePath(path: string): boolean {
  return archivePathProblem(path) === undefined;
}
