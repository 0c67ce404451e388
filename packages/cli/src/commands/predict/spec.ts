import type { CommandSpec } from '../../command-spec.js';

export const predictCommand: CommandSpec = {
  name: 'predict',
  summary: 'Run inputs through an archive in-process, exactly as a server worker would',
  description:
    "Unpacks the archive (checking every hash), loads the handler the way a worker does (initialize, then handle), and prints each input's answer. A handler error prints its message and a stack trace mapped to the handler's TypeScript file and line. Exits 1 when any input fails. A model that asks for GPU execution providers gets those that load on this machine, as the server gives them: the others are dropped with one warning naming the missing library and the fix, and with `fallback: false` none loading is KILN_ERR_PROVIDER_UNAVAILABLE.",
  arguments: [
    { name: '<archive>', description: 'A .mar, .tar.gz or archive folder' },
    { name: '<inputs...>', description: 'Input files; each is one request, its content type taken from the extension' },
  ],
  options: [
    { flags: '--batch', description: 'Send all inputs as one batch instead of one request at a time' },
    { flags: '--json', description: 'Print the results as JSON' },
    { flags: '--content-type <type>', description: 'Content type for every input, instead of guessing from the extension' },
  ],
  load: () => import('./cli.js'),
};
