import { defineErrors } from '@kiln/handler-sdk/errors';

/**
 * The CLI's error codes. `status` is what an HTTP API would answer if the same problem reached it
 * (the server reuses some of these when it loads archives); the CLI maps codes to exit codes.
 */
export const cliError = defineErrors({
  KILN_ERR_USAGE: { status: 400, meaning: 'A flag or argument is missing, unknown or malformed.' },
  KILN_ERR_INVALID_MODEL_NAME: {
    status: 400,
    meaning: 'The model name has characters outside ^[A-Za-z0-9][A-Za-z0-9_\\-.]*$.',
  },
  KILN_ERR_OUTPUT_EXISTS: { status: 409, meaning: 'The archive to write already exists.' },
  KILN_ERR_FILE_NOT_FOUND: { status: 404, meaning: 'A file named by a flag does not exist.' },
  KILN_ERR_EXPORT_PATH_NOT_DIR: { status: 400, meaning: '--export-path names a file, not a folder.' },
  KILN_ERR_NOT_ONNX_MODEL: {
    status: 400,
    meaning: 'The serialized file is not an ONNX model Kiln can describe, or its external data is unusable.',
  },
  KILN_ERR_HANDLER_COMPILE: { status: 400, meaning: 'esbuild could not bundle the handler.' },
  KILN_ERR_HANDLER_EXPORT: { status: 400, meaning: 'The handler module does not export what --handler names.' },
  KILN_ERR_ARCHIVE_PATH_CONFLICT: { status: 400, meaning: 'Two inputs would be stored at the same archive path.' },
  KILN_ERR_PREDICTION_FAILED: { status: 500, meaning: '`kiln predict`: one or more inputs got an error instead of an answer.' },
  KILN_ERR_UNKNOWN_TEMPLATE: { status: 400, meaning: '`kiln init --template` names a template that does not exist.' },
  KILN_ERR_INIT_TARGET_NOT_EMPTY: { status: 409, meaning: '`kiln init` would write into a folder that already has files.' },
});

export type CliErrorCode = keyof typeof cliError.catalogue;

/** Codes that mean the command was called wrongly (exit 2) rather than that it failed (exit 1). */
export const USAGE_ERROR_CODES: ReadonlySet<string> = new Set<CliErrorCode>([
  'KILN_ERR_USAGE',
  'KILN_ERR_INVALID_MODEL_NAME',
  'KILN_ERR_EXPORT_PATH_NOT_DIR',
  'KILN_ERR_UNKNOWN_TEMPLATE',
]);
