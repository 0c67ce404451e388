import { dirname, join, relative } from 'node:path';
import { build, type Message } from 'esbuild';
import { BUNDLED_HANDLER_FILE } from '@kiln/handler-sdk/runtime';
import { cliError } from '../../errors.js';

/** Resolved at load time to the server's own copies, never bundled (DESIGN decision 2). */
export const HANDLER_EXTERNALS = ['onnxruntime-node', 'sharp', '@kiln/handler-sdk', '@kiln/handler-sdk/*'];

// Bundled CommonJS dependencies call require() for Node built-ins; an ES module has none.
const REQUIRE_SHIM =
  "import { createRequire as __kilnCreateRequire } from 'node:module';\nconst require = __kilnCreateRequire(import.meta.url);";

export interface BundledHandler {
  code: Buffer;
  exports: string[];
}

/**
 * Bundles a handler and its npm dependencies into one ES module with an inline source map.
 * The virtual output sits beside the source, so the map names sources relative to it
 * (`handler.ts`, `../node_modules/...`) and stack traces point at the TypeScript line.
 */
export async function bundleHandler(file: string, exportName: string | undefined, cwd: string): Promise<BundledHandler> {
  const outfile = join(dirname(file), BUNDLED_HANDLER_FILE);
  let result;
  try {
    result = await build({
      entryPoints: [file],
      absWorkingDir: dirname(file),
      outfile,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      sourcemap: 'inline',
      sourcesContent: true,
      external: HANDLER_EXTERNALS,
      banner: { js: REQUIRE_SHIM },
      metafile: true,
      write: false,
      logLevel: 'silent',
    });
  } catch (error) {
    const messages = (error as { errors?: Message[] }).errors;
    if (messages === undefined) throw error;
    const where = relative(cwd, file);
    throw cliError(
      'KILN_ERR_HANDLER_COMPILE',
      `--handler ${where} does not compile:\n${messages.map((m) => formatMessage(m, dirname(file), cwd)).join('\n')}`,
      {
        details: { file: where, errors: messages.map((m) => ({ text: m.text, location: m.location })) },
      },
    );
  }
  const output = result.outputFiles.find((f) => f.path === outfile) ?? result.outputFiles[0]!;
  const meta = Object.values(result.metafile.outputs)[0];
  const exports = meta?.exports ?? [];
  const wanted = exportName ?? 'default';
  if (!exports.includes(wanted)) {
    const where = relative(cwd, file);
    const has = exports.length === 0 ? 'it exports nothing' : `it exports: ${exports.join(', ')}`;
    const fix =
      exportName === undefined
        ? `export your handler as default, or name it: --handler ${where}:${exports[0] ?? 'MyHandler'}`
        : `check the name after ':' in --handler`;
    throw cliError('KILN_ERR_HANDLER_EXPORT', `--handler ${where} has no export "${wanted}" (${has}); ${fix}`, {
      details: { file: where, export: wanted, exports },
    });
  }
  return { code: Buffer.from(output.contents), exports };
}

/** `src/handler.ts:3:7: error text`, then the line and a caret under the column. */
function formatMessage(message: Message, workingDir: string, cwd: string): string {
  const loc = message.location;
  if (loc === null) return `  ${message.text}`;
  const file = relative(cwd, join(workingDir, loc.file));
  const caret = `${' '.repeat(loc.column)}^`;
  return `  ${file}:${loc.line}:${loc.column + 1}: ${message.text}\n    ${loc.lineText}\n    ${caret}`;
}
