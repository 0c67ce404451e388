import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { COMMANDS } from '../commands/index.js';
import { renderCliReference } from './cli-reference.js';

const docPath = fileURLToPath(new URL('../../../../docs/reference/cli.md', import.meta.url));

describe('docs/reference/cli.md', () => {
  test('matches the option definitions (run `npm run docs:cli` to regenerate)', () => {
    expect(readFileSync(docPath, 'utf8')).toBe(renderCliReference());
  });

  test('lists every option of every command', () => {
    const doc = renderCliReference();
    for (const command of COMMANDS) {
      expect(doc).toContain(`## kiln ${command.name}`);
      for (const option of command.options) expect(doc).toContain(`\`${option.flags}\``);
    }
  });
});
