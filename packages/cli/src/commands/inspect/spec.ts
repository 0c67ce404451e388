import type { CommandSpec } from '../../command-spec.js';

export const inspectCommand: CommandSpec = {
  name: 'inspect',
  summary: "Print an archive's manifest, signature and files, and check every hash",
  description:
    'Reads all four archive formats (zip with deflate or store, .tar.gz, or an unpacked folder). Exits 1 naming the file when a size or sha256 does not match the manifest.',
  arguments: [{ name: '<archive>', description: 'A .mar, .tar.gz or archive folder' }],
  options: [{ flags: '--json', description: 'Print the report as JSON' }],
  load: () => import('./cli.js'),
};
