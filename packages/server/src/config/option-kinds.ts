/*
 * The kinds of value a server option takes (an integer, a list, an address...): each one's JSON
 * schema, how its KILN_* variable's text and its flag's value are read, and its "type" in the docs.
 * server-options.ts builds every option from one of them.
 */

/** How a value is checked and read; `T` is the value's type in the config file. */
export interface ValueKind<T> {
  schema: Readonly<Record<string, unknown>>;
  /** A KILN_* variable's text → the value (the schema checks it afterwards). */
  fromEnv: (raw: string) => unknown;
  /** What commander gives for the flag (a string, a list of strings, or true) → the value. */
  fromFlag: (raw: unknown) => unknown;
  /** "type and range" in the docs. */
  type: string;
  /** Only for the type: never set. */
  readonly value?: T;
}

export interface ServerOption<T> extends ValueKind<T> {
  default: T | undefined;
  /** Commander syntax: `--workers <n>`. */
  flag: string;
  env: string;
  /** The docs' unit column: `s`, `bytes`, or `—`. */
  unit: string;
  /** One line for `kiln serve --help`. */
  help: string;
  /** The docs' meaning column (Markdown). */
  meaning: string;
}

const same = (raw: unknown) => raw;
export const words = (raw: string) => raw.split(/[\s,]+/).filter(Boolean);

export const integer = (minimum: number, maximum?: number): ValueKind<number> => ({
  schema: { type: 'integer', minimum, ...(maximum === undefined ? {} : { maximum }) },
  fromEnv: Number,
  fromFlag: Number,
  type: maximum === undefined ? `integer ≥ ${minimum}` : `integer ${minimum}–${maximum}`,
});
export const text = (type: string, schema: Record<string, unknown> = { minLength: 1 }): ValueKind<string> => ({
  schema: { type: 'string', ...schema },
  fromEnv: (raw) => raw,
  fromFlag: same,
  type,
});
export const address: ValueKind<string> = text('string starting with `http://`', { pattern: '^http://' });
/** A list; its variable is split on spaces and commas (or only spaces, where an item may hold a comma). */
export const list = <T extends string = string>(
  type: string,
  items: Record<string, unknown>,
  split = words,
  extra: Record<string, unknown> = {},
): ValueKind<T[]> => ({
  schema: { type: 'array', items, ...extra },
  fromEnv: split,
  // `--models a.mar,b.mar` and `--models a.mar b.mar` mean the same, as in the variable.
  fromFlag: (raw) => (Array.isArray(raw) ? raw.flatMap((v) => (typeof v === 'string' ? split(v) : [v])) : raw),
  type,
});
/** A list of numbers; a value that is not a number is kept as text, for the schema to name. */
export const numbers = (type: string, items: Record<string, unknown>): ValueKind<number[]> => {
  const parse = (raw: string) => words(raw).map((w) => (Number.isNaN(Number(w)) ? w : Number(w)));
  return {
    schema: { type: 'array', items, minItems: 1 },
    fromEnv: parse,
    fromFlag: (raw) => (Array.isArray(raw) ? raw.flatMap((v) => (typeof v === 'string' ? parse(v) : [v])) : raw),
    type,
  };
};
export const oneOf = <const T extends string>(values: readonly T[]): ValueKind<T> => ({
  schema: { enum: values },
  fromEnv: (raw) => raw,
  fromFlag: same,
  type: values.map((v) => `\`${v}\``).join(' or '),
});
export const boolean: ValueKind<boolean> = {
  schema: { type: 'boolean' },
  fromEnv: (raw) => (raw === 'true' || raw === '1' ? true : raw === 'false' || raw === '0' ? false : raw),
  fromFlag: same,
  type: 'boolean; the variable takes `true`, `false`, `1` or `0`',
};

export function option<T>(
  kind: ValueKind<T>,
  spec: Omit<ServerOption<T>, keyof ValueKind<T> | 'default'> & { default?: T },
): ServerOption<T> {
  return { ...kind, ...spec, default: spec.default };
}
