import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { renderGrpcStatusTable } from '@kiln/server';
import { REPO_ROOT } from '../support/kiln.js';

test('docs/reference/grpc.md maps every error code the server answers with to its gRPC status as GRPC_STATUS_OF does', () => {
  const page = readFileSync(join(REPO_ROOT, 'docs/reference/grpc.md'), 'utf8');
  const table = /## Errors and status codes\n\n(?:[^|\n][^\n]*\n)*\n((?:\|[^\n]*\n)+)/.exec(page)?.[1];
  expect(table?.trimEnd()).toBe(renderGrpcStatusTable());
});
