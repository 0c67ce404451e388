/**
 * One error class for all of Kiln. Each package declares its own codes with `defineErrors`,
 * and every code has an HTTP status the compiler checks (a catalogue entry cannot omit it).
 */
export interface ErrorSpec {
  /** HTTP status an API answers with when this error reaches a client. */
  readonly status: number;
  /** One line on what went wrong, for docs/reference/errors.md. */
  readonly meaning: string;
}

export interface KilnErrorOptions {
  cause?: unknown;
  /** Structured facts for machine readers (the field, the file, what was received). */
  details?: Readonly<Record<string, unknown>>;
}

export class KilnError extends Error {
  override readonly name = 'KilnError';
  readonly code: string;
  readonly status: number;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: string, status: number, message: string, options: KilnErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = status;
    this.details = options.details;
  }
}

export type ErrorCatalogue<Code extends string> = { readonly [C in Code]: ErrorSpec };

export interface ErrorFactory<Code extends string> {
  (code: Code, message: string, options?: KilnErrorOptions): KilnError;
  readonly catalogue: ErrorCatalogue<Code>;
}

/** Declares a package's error codes and returns the function that raises them. */
export function defineErrors<const Code extends `KILN_ERR_${string}`>(
  catalogue: ErrorCatalogue<Code>,
): ErrorFactory<Code> {
  const frozen = Object.freeze({ ...catalogue });
  const create = (code: Code, message: string, options?: KilnErrorOptions) =>
    new KilnError(code, frozen[code].status, message, options);
  return Object.assign(create, { catalogue: frozen });
}

export function isKilnError(value: unknown): value is KilnError {
  return value instanceof KilnError;
}
