// Regenerates the Keys table of docs/reference/server-config.md from SERVER_OPTIONS, the one table
// of server options, and its table of TorchServe's config.properties keys from TORCHSERVE_KEYS (run
// after `npm run build`). test/docs/server-config-doc.test.ts fails when the page and the tables differ.
import { readFileSync, writeFileSync } from 'node:fs';
import { renderServerOptionsTable } from '../packages/server/dist/config/server-options.js';
import { renderTorchServeKeysTable } from '../packages/server/dist/config/torchserve-properties.js';

const target = new URL('../docs/reference/server-config.md', import.meta.url);
const page = readFileSync(target, 'utf8');
const table = /(## Keys\n\n)(\|[^\n]*\n)+/;
if (!table.test(page)) throw new Error('docs/reference/server-config.md has no table under "## Keys"');
const torchserve = /(### Every TorchServe key\n\n)(\|[^\n]*\n)+/;
if (!torchserve.test(page)) throw new Error('docs/reference/server-config.md has no table under "### Every TorchServe key"');
writeFileSync(
  target,
  page
    .replace(table, (_match, heading) => `${heading}${renderServerOptionsTable()}\n`)
    .replace(torchserve, (_match, heading) => `${heading}${renderTorchServeKeysTable()}\n`),
);
console.log(`wrote ${target.pathname}`);
