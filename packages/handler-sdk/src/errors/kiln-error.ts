import { CLI_ERRORS, ERROR_CATALOGUE, SDK_ERRORS, SERVER_ERRORS, type KilnErrorCode } from './catalogue.js';

/**
 * One error class for all of Kiln. Every code is in the catalogue (./catalogue.ts) with its HTTP
 * status: a KilnError's status always comes from there, never from the place that throws it.
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

/** Where in a handler a request failed, for the client's message and the logs (`explain`, `describe`: those hooks). */
export type FailurePhase = 'decode' | 'preprocess' | 'inference' | 'postprocess' | 'handle' | 'explain' | 'describe';

export class KilnError<Code extends KilnErrorCode = KilnErrorCode> extends Error {
  override readonly name = 'KilnError';
  readonly code: Code;
  readonly status: number;
  readonly details: Readonly<Record<string, unknown>> | undefined;
  /** Set when the error came out of a handler: the step it failed in. */
  phase: FailurePhase | undefined;

  constructor(code: Code, message: string, options: KilnErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = ERROR_CATALOGUE[code].status;
    this.details = options.details;
  }
}

export type ErrorCatalogue<Code extends string> = { readonly [C in Code]: ErrorSpec };

export interface ErrorFactory<Code extends KilnErrorCode> {
  (code: Code, message: string, options?: KilnErrorOptions): KilnError<Code>;
  readonly catalogue: ErrorCatalogue<Code>;
}

function factory<Code extends KilnErrorCode>(catalogue: ErrorCatalogue<Code>): ErrorFactory<Code> {
  const create = (code: Code, message: string, options?: KilnErrorOptions) => new KilnError(code, message, options);
  return Object.assign(create, { catalogue });
}

/** Raises an SDK code; `serverError` and `cliError` the same for theirs. */
export const sdkError = factory(SDK_ERRORS);
export const serverError = factory(SERVER_ERRORS);
export const cliError = factory(CLI_ERRORS);

export function isKilnError(value: unknown): value is KilnError {
  return value instanceof KilnError;
}

export function isKilnErrorCode(value: unknown): value is KilnErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CATALOGUE, value);
}

/**
 * Anything thrown, as a KilnError: a KilnError is returned as it is. An error a framework marks
 * with a 4xx `statusCode` (a body that is not JSON) is the client's: KILN_ERR_BAD_REQUEST. Anything
 * else is `unknownAs`: KILN_ERR_INTERNAL in the server (a bug), KILN_ERR_HANDLER_FAILED for what a
 * handler threw (the message then says in which phase), KILN_ERR_HANDLER_LOAD while loading one.
 */
export function toKilnError(error: unknown, unknownAs: KilnErrorCode = 'KILN_ERR_INTERNAL', phase?: FailurePhase): KilnError {
  if (isKilnError(error)) {
    error.phase ??= phase;
    return error;
  }
  const err = error instanceof Error ? error : new Error(typeof error === 'string' ? error : JSON.stringify(error));
  const status = (err as { statusCode?: unknown }).statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500)
    return new KilnError('KILN_ERR_BAD_REQUEST', err.message, { cause: err });
  const thrownIn = (err as { phase?: FailurePhase }).phase ?? phase;
  const message = unknownAs === 'KILN_ERR_HANDLER_FAILED' ? `${thrownIn ?? 'handler'} failed: ${err.message}` : err.message;
  const wrapped = new KilnError(unknownAs, message, { cause: err });
  wrapped.phase = thrownIn;
  // The stack that matters is the one thrown, not this function's.
  if (err.stack !== undefined) wrapped.stack = `${wrapped.name}: ${message}\n${err.stack.split('\n').slice(1).join('\n')}`;
  return wrapped;
}
