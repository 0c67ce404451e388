// Compiles Kiln's JSON Schemas (manifest, model-config, server config) into standalone validator
// modules with ajv, next to the built code. At run time compileSchema() loads these instead of
// loading ajv and compiling: about 100 ms off every start of `kiln serve` and of every worker that
// reads a config. Run by `npm run build`, after tsc; a schema whose module is missing or stale (its
// hash differs) is compiled at run time as before.
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const { Ajv } = require('ajv');
const standaloneCode = require('ajv/dist/standalone').default;
const runtime = await import('../packages/handler-sdk/dist/runtime/index.js');
const server = await import('../packages/server/dist/index.js');

const targets = [
  [runtime.manifestSchema, '../packages/handler-sdk/dist/schema/compiled/manifest.cjs'],
  [runtime.modelConfigSchema, '../packages/handler-sdk/dist/schema/compiled/model-config.cjs'],
  [server.serverConfigSchema, '../packages/server/dist/config/server-config.schema.cjs'],
];
for (const [schema, relative] of targets) {
  // The same options as compileSchema() (packages/handler-sdk/src/schema/ajv.ts), so errors match.
  const ajv = new Ajv({ ...runtime.AJV_OPTIONS, code: { source: true } });
  const code = standaloneCode(ajv, ajv.compile(schema));
  const path = fileURLToPath(new URL(relative, import.meta.url));
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${code}\nmodule.exports.schemaHash = ${JSON.stringify(runtime.schemaHash(schema))};\n`);
}
console.log(`compiled ${targets.length} schemas`);
