// Archives a bench model with the tensor handler and a model-config.yaml, with the kiln CLI of
// `kilnRoot` (this checkout, or a build of another revision): shared by bench:compare and bench:batching.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Writes `config` as `out/model-config.yaml`, archives `model` into `out`, and returns the .mar path.
 * @param {string} kilnRoot @param {{ key: string, path: string }} model @param {string} config @param {string} out
 */
export function archiveWithConfig(kilnRoot, model, config, out) {
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'model-config.yaml'), config);
  const args = ['archive', '--model-name', model.key, '-v', '1', '--serialized-file', model.path, '--handler', 'tensor'];
  try {
    execFileSync(
      process.execPath,
      [join(kilnRoot, 'packages/cli/bin/kiln.js'), ...args, '-c', join(out, 'model-config.yaml'), '--export-path', out, '-f', '-q'],
      { stdio: 'pipe' },
    );
  } catch (error) {
    throw new Error(
      `kiln archive refused model-config.yaml (${config.trim().split('\n').join(', ')}): ${String(error.stderr ?? error.message).trim()}`,
    );
  }
  const mar = join(out, `${model.key}.mar`);
  if (!existsSync(mar)) throw new Error(`kiln archive wrote no ${mar}`);
  return mar;
}
