import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { describe, expect, test } from 'vitest';
import { modelConfigSchema } from '../config/model-config-schema.js';
import { manifestSchema } from '../manifest/manifest-schema.js';
import { AJV_OPTIONS, compileSchema, schemaHash } from './ajv.js';

// The build (scripts/compile-schemas.mjs) writes these next to the compiled code; tests run after it.
const require = createRequire(import.meta.url);
const built = (name: string) => fileURLToPath(new URL(`../../dist/schema/compiled/${name}.cjs`, import.meta.url));

const cases = {
  manifest: {
    schema: manifestSchema,
    bad: [{}, { runtime: 'python' }, { model: { modelName: 3 }, files: { 'a.onnx': { size: -1 } } }],
  },
  'model-config': {
    schema: modelConfigSchema,
    bad: [{ batchSize: 0 }, { workers: 2 }, { isolation: 'vm', deviceIds: [1, 1], executionProviders: [] }],
  },
};

describe.each(Object.entries(cases))('the precompiled %s validator', (name, { schema, bad }) => {
  test('is built from the schema as it is now', () => {
    expect((require(built(name)) as { schemaHash: string }).schemaHash).toBe(schemaHash(schema));
  });

  test('reports exactly what ajv compiling at run time reports', () => {
    const precompiled = compileSchema(schema, new URL(`file://${built(name)}`));
    const runtime = new Ajv(AJV_OPTIONS).compile(schema);
    for (const value of bad) {
      expect(precompiled(value)).toBe(false);
      expect(runtime(value)).toBe(false);
      expect(precompiled.errors?.map((e) => [e.instancePath, e.keyword, e.params])).toEqual(
        runtime.errors?.map((e) => [e.instancePath, e.keyword, e.params]),
      );
    }
  });
});

test('a precompiled module built from another schema is not used', () => {
  const validate = compileSchema<{ n: number }>(
    { type: 'object', properties: { n: { type: 'integer' } }, additionalProperties: false },
    new URL(`file://${built('manifest')}`),
  );
  expect(validate({ n: 1 })).toBe(true); // the manifest validator would refuse this
  expect(validate({ n: 'x' })).toBe(false);
});
