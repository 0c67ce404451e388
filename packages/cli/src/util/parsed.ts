/*
 * What commander parsed, read with the type each option and argument has. The specs declare which
 * options take a value, which are switches and which have choices, and commander enforces them; a
 * value of another type here means a spec and its command disagree, and is reported as that bug.
 */

export class ParsedOptions {
  constructor(private readonly values: Readonly<Record<string, unknown>>) {}

  /** An option that takes a value and is required or has a default. */
  string(name: string): string {
    const value = this.optionalString(name);
    if (value === undefined) throw mismatch(`option ${name}`, 'a value', undefined);
    return value;
  }

  optionalString(name: string): string | undefined {
    const value = this.values[name];
    if (value === undefined || typeof value === 'string') return value;
    throw mismatch(`option ${name}`, 'a string', value);
  }

  /** A switch (`--force`): false when not given. */
  boolean(name: string): boolean {
    const value = this.values[name];
    if (value === undefined || typeof value === 'boolean') return value === true;
    throw mismatch(`option ${name}`, 'a switch', value);
  }

  /** An option whose spec lists its choices, with a default. */
  choice<const T extends string>(name: string, choices: readonly T[]): T {
    const value = this.string(name);
    const found = choices.find((c) => c === value);
    if (found === undefined) throw mismatch(`option ${name}`, `one of ${choices.join(', ')}`, value);
    return found;
  }

  /** A variadic option (`--models <a...>`): its values, or undefined when not given. */
  optionalList(name: string): string[] | undefined {
    const value = this.values[name];
    if (value === undefined) return undefined;
    if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value;
    throw mismatch(`option ${name}`, 'a list of values', value);
  }

  /** Every option given or defaulted, as commander parsed it (for commands that map flags generically). */
  entries(): [string, unknown][] {
    return Object.entries(this.values);
  }
}

export class ParsedArgs {
  constructor(private readonly values: readonly unknown[]) {}

  /** A required argument (`<archive>`). */
  string(index: number): string {
    const value = this.values[index];
    if (typeof value === 'string') return value;
    throw mismatch(`argument ${index + 1}`, 'a value', value);
  }

  /** A variadic argument (`<files...>`). */
  list(index: number): string[] {
    const value = this.values[index];
    if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value;
    throw mismatch(`argument ${index + 1}`, 'a list of values', value);
  }
}

function mismatch(what: string, expected: string, received: unknown): Error {
  return new TypeError(`kiln: ${what} should be ${expected} by its command's spec, but commander gave ${JSON.stringify(received)}`);
}
