import { resolveModelConfig } from '../config/parse-model-config.js';
import type { ProviderReport } from './probe.js';
import { describe, expect, test } from 'vitest';
import { chooseProviders, settleProviders } from './choose.js';

/** A probe's report: `loadable` names the providers that load; the others carry a reason and a fix. */
function report(...loadable: string[]): ProviderReport {
  return {
    onnxruntime: '1.30.0',
    providers: ['cpu', 'webgpu', 'cuda', 'tensorrt'].map((name) =>
      loadable.includes(name)
        ? { name, bundled: name === 'cpu' || name === 'webgpu', loadable: true }
        : { name, bundled: false, loadable: false, reason: `${name} is missing here`, fix: `install ${name}` },
    ),
  };
}

const gpuModel = (extra: object = {}) => resolveModelConfig({ deviceType: 'gpu', ...extra });

describe('chooseProviders', () => {
  test('keeps a config whose providers all load, unchanged and unwarned', () => {
    const config = gpuModel();
    expect(chooseProviders('m', config, report('cpu', 'cuda'))).toEqual({ config });
  });

  test('a GPU model whose GPU providers do not load runs on the CPU, with one warning naming each reason and fix', () => {
    const { config, warning } = chooseProviders('resnet', gpuModel(), report('cpu'));
    expect(config).toMatchObject({ deviceType: 'cpu', executionProviders: ['cpu'] });
    expect(warning).toBe(
      'model "resnet" runs on the CPU: none of the execution providers it asks for (cuda) loads on this machine. cuda: cuda is missing here (fix: install cuda)',
    );
  });

  test('fallback: false makes it KILN_ERR_PROVIDER_UNAVAILABLE, naming what is missing', () => {
    const run = () => chooseProviders('resnet', gpuModel({ fallback: false, executionProviders: ['tensorrt', 'cuda'] }), report('cpu'));
    expect(run).toThrow(
      expect.objectContaining({
        code: 'KILN_ERR_PROVIDER_UNAVAILABLE',
        message: expect.stringContaining(
          'model "resnet" asks for tensorrt, cuda with fallback: false, and none of them loads on this machine. tensorrt: tensorrt is missing here (fix: install tensorrt); cuda: cuda is missing here',
        ),
      }),
    );
  });

  test('a GPU provider that loads is kept when another is dropped, and the dropped one is warned', () => {
    const { config, warning } = chooseProviders('m', gpuModel({ executionProviders: ['tensorrt', 'cuda', 'cpu'] }), report('cpu', 'cuda'));
    expect(config).toMatchObject({ deviceType: 'gpu', executionProviders: ['cuda', 'cpu'] });
    expect(warning).toMatch(/^model "m" runs on cuda: tensorrt does not load on this machine\. tensorrt: tensorrt is missing here/);
  });

  test('webgpu first, then cpu: cpu when webgpu does not load; fallback: false refuses it, though the list names cpu', () => {
    const config = resolveModelConfig({ executionProviders: ['webgpu', 'cpu'], fallback: false });
    expect(() => chooseProviders('m', config, report('cpu'))).toThrow(/asks for webgpu with fallback: false/);
    const lenient = chooseProviders('m', resolveModelConfig({ executionProviders: ['webgpu', 'cpu'] }), report('cpu'));
    expect(lenient.config.executionProviders).toEqual(['cpu']);
  });
});

describe('settleProviders: the same choice for a model loaded in-process (kiln predict, runHandler)', () => {
  test('a config that asks only for cpu is not probed', async () => {
    const probed: string[][] = [];
    const config = resolveModelConfig({});
    const settled = await settleProviders(
      'm',
      config,
      () => {},
      async (names) => (probed.push([...names]), report('cpu')),
    );
    expect(settled).toBe(config);
    expect(probed).toEqual([]);
  });

  test('a GPU config is probed for its own providers, and its warning goes to warn', async () => {
    const probed: string[][] = [];
    const warnings: string[] = [];
    const settled = await settleProviders(
      'm',
      gpuModel(),
      (w) => warnings.push(w),
      async (names) => (probed.push([...names]), report('cpu')),
    );
    expect(probed).toEqual([['cuda', 'cpu']]);
    expect(settled).toMatchObject({ deviceType: 'cpu', executionProviders: ['cpu'] });
    expect(warnings).toEqual([expect.stringMatching(/^model "m" runs on the CPU: .*cuda is missing here \(fix: install cuda\)$/)]);
  });
});
