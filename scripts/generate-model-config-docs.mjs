// Regenerates the Keys table of docs/reference/model-config.md from MODEL_CONFIG_KEYS, the one table
// of model-config.yaml keys (run after `npm run build`). test/docs/model-config-doc.test.ts fails when the
// page and the table differ.
import { readFileSync, writeFileSync } from 'node:fs';
import { renderModelConfigTable } from '../packages/handler-sdk/dist/runtime/index.js';

const target = new URL('../docs/reference/model-config.md', import.meta.url);
const page = readFileSync(target, 'utf8');
const table = /(\| key \| type and range \|[^\n]*\n)(\|[^\n]*\n)+/;
if (!table.test(page)) throw new Error('docs/reference/model-config.md has no keys table');
writeFileSync(target, page.replace(table, `${renderModelConfigTable()}\n`));
console.log(`wrote ${target.pathname}`);
