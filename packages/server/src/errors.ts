import { defineErrors } from '@kiln/handler-sdk';

/** The server's error codes. */
export const serverError = defineErrors({
  KILN_ERR_ARCHIVE_UNREADABLE: { status: 400, meaning: 'The file is not a Kiln archive in a format Kiln reads, or it is corrupt.' },
  KILN_ERR_ARCHIVE_UNSAFE_ENTRY: {
    status: 400,
    meaning: 'An archive entry is a link, has an absolute or `..` path, a backslash, or appears twice.',
  },
  KILN_ERR_ARCHIVE_INTEGRITY: {
    status: 400,
    meaning: "An archive's files do not match the sizes and sha256 hashes its manifest lists.",
  },
});

export type ServerErrorCode = keyof typeof serverError.catalogue;
