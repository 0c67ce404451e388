import { serverError } from '@kiln/handler-sdk/errors';
import { probeProviders, type ProviderStatus } from '@kiln/handler-sdk/runtime';
import type { CommandIO } from '../../command-spec.js';
import { cliError } from '../../errors.js';
import type { ParsedArgs, ParsedOptions } from '../../util/parsed.js';
import { diagnose } from './diagnose.js';
import { installCuda, type Installed } from './install-cuda.js';
import { renderDiagnosis, renderProviders } from './render.js';

/** The report is a diagnosis and exits 0 whatever it finds; only --require and a failed install exit 1. */
export async function execute(_args: ParsedArgs, options: ParsedOptions, io: CommandIO): Promise<void> {
  const json = options.boolean('json');
  const required = options.optionalString('require');
  const from = options.optionalString('from');
  if (options.optionalString('install') === undefined) {
    if (from !== undefined) throw cliError('KILN_ERR_USAGE', '--from names the package to install from: give it with --install cuda');
    const diagnosis = await diagnose(io.env);
    io.stdout(json ? `${JSON.stringify(diagnosis, null, 2)}\n` : renderDiagnosis(diagnosis));
    if (required !== undefined) requireLoadable(required, diagnosis.providers);
    return;
  }
  const installed = await installCuda({ ...(from === undefined ? {} : { from }), cwd: io.cwd, env: io.env, progress: io.stderr });
  const { providers } = await probeProviders([...new Set(['cuda', 'tensorrt', ...(required === undefined ? [] : [required])])]);
  io.stdout(json ? `${JSON.stringify({ installed, providers }, null, 2)}\n` : renderInstalled(installed, providers));
  if (required !== undefined) requireLoadable(required, providers);
}

function renderInstalled(installed: Installed, providers: readonly ProviderStatus[]): string {
  const lines = [
    `installed ${installed.files.join(', ')}`,
    `  in ${installed.binDir}`,
    `  from ${installed.source}`,
    '',
    'execution providers, tried again',
    ...renderProviders(providers),
  ];
  if (!installed.inOnnxRuntime) {
    lines.push('', 'KILN_ORT_BIN_DIR sent the libraries outside onnxruntime-node, so the providers above were tried from its own folder.');
  }
  return `${lines.join('\n')}\n`;
}

function requireLoadable(name: string, providers: readonly ProviderStatus[]): void {
  const status = providers.find((p) => p.name === name);
  if (status?.loadable === true) return;
  const why =
    status === undefined
      ? `this onnxruntime-node build has no "${name}" execution provider; it has ${providers.map((p) => p.name).join(', ')}`
      : `${status.reason ?? 'no reason given'}; ${status.fix ?? 'run `kiln doctor` for what this machine has'}`;
  throw serverError('KILN_ERR_PROVIDER_UNAVAILABLE', `--require ${name}: ${name} does not load here: ${why}`, {
    details: { provider: name, reason: status?.reason, fix: status?.fix },
  });
}
