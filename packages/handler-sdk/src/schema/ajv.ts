import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { Ajv as AjvInstance, ErrorObject, Options, ValidateFunction } from 'ajv';

/** A compiled schema: a type guard whose `errors` say what was wrong after a failed call. */
export interface Validator<T> {
  (data: unknown): data is T;
  errors: ErrorObject[] | null | undefined;
}

/** The project's ajv settings: report every problem, strict schemas. scripts/compile-schemas.mjs uses them too. */
export const AJV_OPTIONS: Options = Object.freeze({ allErrors: true, strict: true, allowUnionTypes: true });

const require = createRequire(import.meta.url);
let ajv: AjvInstance | undefined;

/** A schema's fingerprint: a precompiled validator is used only for the schema it was built from. */
export function schemaHash(schema: object): string {
  return createHash('sha256').update(JSON.stringify(schema)).digest('hex');
}

type Compiled<T> = ValidateFunction<T> | (((data: unknown) => boolean) & { errors?: ErrorObject[] | null });

/**
 * A validator for a JSON Schema, ready on its first use. `precompiled` names the module that
 * scripts/compile-schemas.mjs wrote for this schema at build time; it is used when present and
 * built from this very schema. Otherwise ajv is loaded and compiles the schema then: importing a
 * module that declares a schema costs nothing either way, which keeps `kiln --help`, the server's
 * start and a worker's boot short.
 */
export function compileSchema<T>(schema: object, precompiled?: URL): Validator<T> {
  let compiled: Compiled<T> | undefined;
  const validate = ((data: unknown): data is T => {
    compiled ??= load<T>(schema, precompiled);
    const ok = compiled(data);
    validate.errors = compiled.errors;
    return ok;
  }) as Validator<T>;
  validate.errors = undefined;
  return validate;
}

function load<T>(schema: object, precompiled: URL | undefined): Compiled<T> {
  if (precompiled !== undefined) {
    try {
      const module = require(fileURLToPath(precompiled)) as Compiled<T> & { schemaHash?: string };
      if (module.schemaHash === schemaHash(schema)) return module;
    } catch {
      // Not built (a source checkout running tests before a build): compile below.
    }
  }
  if (ajv === undefined) {
    const { Ajv } = require('ajv') as typeof import('ajv');
    ajv = new Ajv(AJV_OPTIONS);
  }
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

/**
 * One error per problem: ajv reports a value that matches no branch of an `anyOf` once per branch,
 * then once for the `anyOf`. Those become the one `anyOf` error, whose message names every branch
 * (`must be integer or "auto"`).
 */
export function collapseAnyOf(errors: readonly ErrorObject[]): ErrorObject[] {
  const out: ErrorObject[] = [];
  for (const error of errors) {
    if (error.keyword !== 'anyOf') {
      out.push(error);
      continue;
    }
    const prefix = `${error.schemaPath}/`;
    const branches = out.filter((e) => e.instancePath === error.instancePath && e.schemaPath.startsWith(prefix));
    const alternatives = branches.map((e) => describeError(e).replace(/^must be /, ''));
    for (const branch of branches) out.splice(out.indexOf(branch), 1);
    out.push({ ...error, message: `must be ${alternatives.join(' or ')}` });
  }
  return out;
}

/** `path: message` lines, one per error, as changesets' config parser reports them. */
export function formatErrors(errors: readonly ErrorObject[], label = (path: string[]) => path.join('.')): string[] {
  return collapseAnyOf(errors).map((error) => {
    const path = errorPath(error);
    const where = label(path);
    return where === '' ? describeError(error) : `${where}: ${describeError(error)}`;
  });
}
