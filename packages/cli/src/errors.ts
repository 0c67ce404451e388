/** The CLI's codes and their factory, from the one catalogue in `@kiln/handler-sdk/errors`. */
import type { CliErrorCode } from '@kiln/handler-sdk/errors';

export { cliError } from '@kiln/handler-sdk/errors';
export type { CliErrorCode };

/** Codes that mean the command was called wrongly (exit 2) rather than that it failed (exit 1). */
export const USAGE_ERROR_CODES: ReadonlySet<string> = new Set<CliErrorCode>([
  'KILN_ERR_USAGE',
  'KILN_ERR_INVALID_MODEL_NAME',
  'KILN_ERR_EXPORT_PATH_NOT_DIR',
]);
