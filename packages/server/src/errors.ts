/** The server's codes and their factory, from the one catalogue in `@kiln/handler-sdk/errors`. */
export { serverError } from '@kiln/handler-sdk/errors';
export type { ServerErrorCode } from '@kiln/handler-sdk/errors';
