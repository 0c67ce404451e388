/** The SDK's codes and their factory; the whole catalogue is ./catalogue.ts. */
export { sdkError } from './kiln-error.js';
export type { SdkErrorCode } from './catalogue.js';
