import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect, test } from 'vitest';
import { kiln, tempDir } from '../support/kiln.js';
import { readArchive } from '../support/read-archive.js';

/** A user's project with a local npm package (CommonJS, requiring a Node built-in). */
function makeHandlerProject(dir: string): void {
  const pkg = join(dir, 'node_modules/shout');
  mkdirSync(pkg, { recursive: true });
  writeFileSync(join(pkg, 'package.json'), JSON.stringify({ name: 'shout', version: '1.0.0', main: 'index.js' }));
  writeFileSync(
    join(pkg, 'index.js'),
    "const { sep } = require('node:path');\nmodule.exports = (s) => s.toUpperCase() + '!' + (sep === '/' ? '' : '?');\n",
  );
  mkdirSync(join(dir, 'src'));
  writeFileSync(
    join(dir, 'src/handler.ts'),
    `import shout from 'shout';

export class ShoutHandler {
  handle(text: string): string {
    return shout(text);
  }
}

export const notAHandler = 1;
`,
  );
}

test('a handler that imports a local npm package is bundled into one file, with no node_modules', async () => {
  const dir = tempDir();
  makeHandlerProject(dir);
  const run = kiln(['archive', '--model-name', 'shout', '-v', '2', '--handler', 'src/handler.ts:ShoutHandler', '--export-path', 'out'], {
    cwd: dir,
  });
  expect(run.stderr).not.toContain('error');
  expect(run.status).toBe(0);

  const files = await readArchive(join(dir, 'out/shout.mar'));
  expect([...files.keys()].sort()).toEqual(['MAR-INF/MANIFEST.json', 'handler.mjs']);
  const manifest = JSON.parse(files.get('MAR-INF/MANIFEST.json')!.toString());
  expect(manifest.model.handler).toBe('handler.mjs:ShoutHandler');
  expect(manifest.model.serializedFile).toBeUndefined();
  expect(manifest.signature).toBeUndefined();

  const bundle = files.get('handler.mjs')!.toString();
  expect(bundle).toContain('toUpperCase'); // the package's code is inlined
  expect(bundle).toMatch(/\/\/# sourceMappingURL=data:application\/json;base64,/);
  const map = JSON.parse(Buffer.from(bundle.split('base64,')[1]!, 'base64').toString());
  expect(map.sources).toEqual(expect.arrayContaining(['handler.ts', '../node_modules/shout/index.js'])); // relative to the handler

  // The bundle runs on its own: import it from a folder with no node_modules and call it.
  const isolated = tempDir();
  writeFileSync(join(isolated, 'handler.mjs'), bundle);
  const module = await import(pathToFileURL(join(isolated, 'handler.mjs')).href);
  expect(new module.ShoutHandler().handle('kiln')).toBe('KILN!');
});

test('onnxruntime-node, sharp and @kiln/handler-sdk stay external imports', async () => {
  const dir = tempDir();
  writeFileSync(
    join(dir, 'handler.ts'),
    `import { InferenceSession } from 'onnxruntime-node';
import sharp from 'sharp';
import { SDK_VERSION } from '@kiln/handler-sdk';
export default class H { run() { return [InferenceSession, sharp, SDK_VERSION]; } }
`,
  );
  expect(kiln(['archive', '--model-name', 'ext', '-v', '1', '--handler', 'handler.ts'], { cwd: dir }).status).toBe(0);
  const bundle = (await readArchive(join(dir, 'ext.mar'))).get('handler.mjs')!.toString();
  expect(bundle).toMatch(/from "onnxruntime-node"/);
  expect(bundle).toMatch(/from "sharp"/);
  expect(bundle).toMatch(/from "@kiln\/handler-sdk"/);
});

test('a built-in handler name stores no handler file', async () => {
  const dir = tempDir();
  expect(kiln(['archive', '--model-name', 'builtin', '-v', '1', '--handler', 'image_classifier'], { cwd: dir }).status).toBe(0);
  const files = await readArchive(join(dir, 'builtin.mar'));
  expect([...files.keys()]).toEqual(['MAR-INF/MANIFEST.json']);
  expect(JSON.parse(files.get('MAR-INF/MANIFEST.json')!.toString()).model.handler).toBe('image_classifier');
});
