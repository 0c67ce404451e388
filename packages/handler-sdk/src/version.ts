import { createRequire } from 'node:module';

/** The SDK's own version, recorded in every manifest the archiver writes. */
export const SDK_VERSION: string = (createRequire(import.meta.url)('../package.json') as { version: string }).version;
