import type { ModelConfig } from '../config/model-config-schema.js';
import { serverError } from '../errors/kiln-error.js';
import { probeProviders, type ProviderReport, type ProviderStatus } from './probe.js';

/*
 * A model's execution providers, kept only where they load on this machine, so that a session is
 * never asked for one that fails (ONNX Runtime and Dawn print their own raw errors when it is). The
 * server decides this once per model (registry/devices.ts); `kiln predict` and runHandler decide it
 * the same way before they load a model in-process.
 */

/** The execution providers that run on a GPU. */
export const GPU_PROVIDERS: ReadonlySet<string> = new Set(['cuda', 'tensorrt', 'webgpu']);

/**
 * The providers of `config` that load on this machine, in the config's order. When every GPU
 * provider it asked for is missing: with `fallback`, the CPU, and a warning naming each missing
 * provider's library and fix; without, KILN_ERR_PROVIDER_UNAVAILABLE. A provider dropped while
 * another GPU provider loads is warned too.
 */
export function chooseProviders(model: string, config: ModelConfig, report: ProviderReport): { config: ModelConfig; warning?: string } {
  const status = (name: string): ProviderStatus =>
    report.providers.find((p) => p.name === name) ?? { name, bundled: false, loadable: name === 'cpu' };
  const missing = config.executionProviders.map(status).filter((p) => !p.loadable);
  if (missing.length === 0) return { config };
  const kept = config.executionProviders.filter((p) => status(p).loadable);
  const why = missing
    .map((p) => `${p.name}: ${p.reason ?? 'it does not load here'}${p.fix === undefined ? '' : ` (fix: ${p.fix})`}`)
    .join('; ');
  const gpuAsked = config.executionProviders.filter((p) => GPU_PROVIDERS.has(p));
  const gpuKept = kept.filter((p) => GPU_PROVIDERS.has(p));
  if (gpuAsked.length > 0 && gpuKept.length === 0) {
    if (!config.fallback) {
      throw serverError(
        'KILN_ERR_PROVIDER_UNAVAILABLE',
        `model "${model}" asks for ${gpuAsked.join(', ')} with fallback: false, and none of them loads on this machine. ${why}. Run kiln doctor for what this machine has, or set fallback: true to run on the CPU`,
      );
    }
    return {
      config: Object.freeze({ ...config, deviceType: 'cpu', executionProviders: Object.freeze(['cpu'] as const) }),
      warning: `model "${model}" runs on the CPU: none of the execution providers it asks for (${gpuAsked.join(', ')}) loads on this machine. ${why}`,
    };
  }
  const executionProviders = kept.length > 0 ? kept : (['cpu'] as const);
  return {
    config: Object.freeze({ ...config, executionProviders: Object.freeze([...executionProviders]) }),
    warning: `model "${model}" runs on ${executionProviders[0]}: ${missing.map((p) => p.name).join(', ')} ${missing.length === 1 ? 'does' : 'do'} not load on this machine. ${why}`,
  };
}

/**
 * chooseProviders for a model loaded in-process: a config that asks only for cpu is returned as it
 * is, without a probe; otherwise its providers are probed (a child process, about half a second)
 * and the warning, if any, goes to `warn`.
 */
export async function settleProviders(
  model: string,
  config: ModelConfig,
  warn: (message: string) => void,
  probe: (names: readonly string[]) => Promise<ProviderReport> = probeProviders,
): Promise<ModelConfig> {
  if (config.executionProviders.every((p) => p === 'cpu')) return config;
  const chosen = chooseProviders(model, config, await probe(config.executionProviders));
  if (chosen.warning !== undefined) warn(chosen.warning);
  return chosen.config;
}
