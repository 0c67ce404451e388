// Regenerates docs/reference/cli.md from the CLI's option definitions (run after `npm run build`).
import { writeFileSync } from 'node:fs';
import { renderCliReference } from '../packages/cli/dist/docs/cli-reference.js';

const target = new URL('../docs/reference/cli.md', import.meta.url);
writeFileSync(target, renderCliReference());
console.log(`wrote ${target.pathname}`);
