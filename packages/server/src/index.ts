export { serverError } from './errors.js';
export type { ServerErrorCode } from './errors.js';
export { detectFormat, walkArchive } from './archive/walk-archive.js';
export type { ArchiveFileEntry, ArchiveFormat, EntryVisitor } from './archive/walk-archive.js';
export { integrityError, verifyArchive } from './archive/verify-archive.js';
export { extractArchive } from './archive/extract-archive.js';
export type { ArchiveReport, FileStatus, VerifiedFile } from './archive/verify-archive.js';
