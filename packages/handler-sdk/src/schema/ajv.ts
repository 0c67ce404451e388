import { createRequire } from 'node:module';
import type { Ajv as AjvInstance, ErrorObject, ValidateFunction } from 'ajv';

/** A compiled schema: a type guard whose `errors` say what was wrong after a failed call. */
export interface Validator<T> {
  (data: unknown): data is T;
  errors: ErrorObject[] | null | undefined;
}

let ajv: AjvInstance | undefined;

/**
 * Compiles a JSON Schema with the project's ajv settings (report every problem, strict schemas) on
 * its first use. ajv is loaded, and the schema compiled, only then: importing a module that declares
 * a schema costs nothing, which keeps `kiln --help`, the server's start and a worker's boot short (a
 * worker is handed its manifest and config already checked, and never compiles one).
 */
export function compileSchema<T>(schema: object): Validator<T> {
  let compiled: ValidateFunction<T> | undefined;
  const validate = ((data: unknown): data is T => {
    if (compiled === undefined) {
      if (ajv === undefined) {
        const { Ajv } = createRequire(import.meta.url)('ajv') as typeof import('ajv');
        ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true });
      }
      compiled = ajv.compile<T>(schema);
    }
    const ok = compiled(data);
    validate.errors = compiled.errors;
    return ok;
  }) as Validator<T>;
  validate.errors = undefined;
  return validate;
}

/** The instance path of an error as keys, e.g. `/model/modelName` → ['model', 'modelName']. */
export function errorPath(error: ErrorObject): string[] {
  const keys = error.instancePath === '' ? [] : error.instancePath.slice(1).split('/');
  return keys.map((key) => key.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** A message for one ajv error that says what was expected, in plain words. */
export function describeError(error: ErrorObject): string {
  const p = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'additionalProperties':
      return `unknown key "${String(p.additionalProperty)}"`;
    case 'required':
      return `missing required key "${String(p.missingProperty)}"`;
    case 'enum':
      return `must be one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'uniqueItems':
      return `must not repeat an item (items ${String(p.j)} and ${String(p.i)} are the same)`;
    case 'const':
      return `must be ${JSON.stringify(p.allowedValue)}`;
    default:
      return error.message ?? error.keyword;
  }
}

/** `path: message` lines, one per error, as changesets' config parser reports them. */
export function formatErrors(errors: readonly ErrorObject[], label = (path: string[]) => path.join('.')): string[] {
  return errors.map((error) => {
    const path = errorPath(error);
    const where = label(path);
    return where === '' ? describeError(error) : `${where}: ${describeError(error)}`;
  });
}
