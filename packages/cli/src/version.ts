import { createRequire } from 'node:module';

/** The CLI's version; the archiver records it as `archiverVersion`. */
export const CLI_VERSION: string = (createRequire(import.meta.url)('../package.json') as { version: string }).version;
