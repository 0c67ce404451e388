import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';

const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true });

/** Compiles a JSON Schema once with the project's ajv settings (report every problem, strict schemas). */
export function compileSchema<T>(schema: object): ValidateFunction<T> {
  return ajv.compile<T>(schema);
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
