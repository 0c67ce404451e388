import { describe, expect, test } from 'vitest';
import { isKilnError } from '../errors/kiln-error.js';
import { parseModelConfig, resolveModelConfig } from './parse-model-config.js';

function problems(text: string): string[] {
  try {
    parseModelConfig(text, 'cfg.yaml');
  } catch (error) {
    if (isKilnError(error) && error.code === 'KILN_ERR_MODEL_CONFIG_INVALID') return error.details!.problems as string[];
    throw error;
  }
  throw new Error('expected the config to be refused');
}

describe('parseModelConfig', () => {
  test('accepts every TorchServe key and Kiln key, and the free handler section', () => {
    const config = parseModelConfig(
      [
        'minWorkers: 2',
        'maxWorkers: 4',
        'batchSize: 8',
        'maxBatchDelay: 50',
        'responseTimeout: 30',
        'startupTimeout: 60',
        'jobQueueSize: 200',
        'clientTimeoutInMills: 1000',
        'deviceType: gpu',
        'deviceIds: [0, 1]',
        'executionProviders: [tensorrt, cuda, cpu]',
        'intraOpNumThreads: 2',
        'handler:',
        '  topk: 5',
        '  labels: { file: index_to_name.json }',
      ].join('\n'),
    );
    expect(config.handler).toEqual({ topk: 5, labels: { file: 'index_to_name.json' } });
    expect(Object.isFrozen(config.handler)).toBe(true);
    expect(resolveModelConfig(config)).toMatchObject({
      minWorkers: 2,
      maxWorkers: 4,
      batchSize: 8,
      maxBatchDelayMs: 50,
      responseTimeoutS: 30,
      startupTimeoutS: 60,
      jobQueueSize: 200,
      clientTimeoutMs: 1000,
      deviceType: 'gpu',
      deviceIds: [0, 1],
      executionProviders: ['tensorrt', 'cuda', 'cpu'],
      intraOpNumThreads: 2,
    });
  });

  test('an empty file is an empty config, and defaults fill it in', () => {
    expect(parseModelConfig('')).toEqual({});
    expect(resolveModelConfig(parseModelConfig(''))).toEqual({
      minWorkers: 1,
      maxWorkers: 1,
      scaleUpAfterMs: 1000,
      scaleDownAfterS: 60,
      batchSize: 1,
      maxBatchDelayMs: 100,
      maxLatencyMs: undefined,
      responseTimeoutS: 120,
      startupTimeoutS: 120,
      jobQueueSize: 100,
      clientTimeoutMs: 0,
      deviceType: 'cpu',
      deviceIds: [],
      executionProviders: ['cpu'],
      fallback: true,
      intraOpNumThreads: undefined,
      isolation: undefined,
      workerHeapLimitMb: undefined,
      allowNonFinite: false,
      handler: {},
    });
    expect(resolveModelConfig({ deviceType: 'gpu' }).executionProviders).toEqual(['cuda', 'cpu']);
    // minWorkers 0 starts workers on demand, so the default maxWorkers is at least one.
    expect(resolveModelConfig({ minWorkers: 0 })).toMatchObject({ minWorkers: 0, maxWorkers: 1 });
    expect(resolveModelConfig({ minWorkers: 0, maxWorkers: 4, scaleUpAfter: 50, scaleDownAfter: 2 })).toMatchObject({
      maxWorkers: 4,
      scaleUpAfterMs: 50,
      scaleDownAfterS: 2,
    });
  });

  test('reports every problem at once, each with its line', () => {
    expect(problems('batchSize: 8\nbatch_delay: 5\nminWorkers: zero\n\ndeviceType: tpu\nexecutionProviders: [cuda, cuda]\n')).toEqual([
      'cfg.yaml:2: unknown key "batch_delay" (known keys: minWorkers, maxWorkers, scaleUpAfter, scaleDownAfter, batchSize, maxBatchDelay, maxLatencyMs, responseTimeout, startupTimeout, jobQueueSize, clientTimeoutInMills, deviceType, deviceIds, executionProviders, fallback, intraOpNumThreads, isolation, workerHeapLimitMb, allowNonFinite, handler)',
      'cfg.yaml:3: minWorkers: must be integer',
      'cfg.yaml:5: deviceType: must be one of "cpu", "gpu"',
      'cfg.yaml:6: executionProviders: must not repeat an item (items 0 and 1 are the same)',
    ]);
  });

  test('suggests the right spelling of a key', () => {
    expect(problems('max_batch_delay: 5')).toEqual(['cfg.yaml:1: unknown key "max_batch_delay" (did you mean "maxBatchDelay"?)']);
    expect(problems('batchSzie: 5')).toEqual(['cfg.yaml:1: unknown key "batchSzie" (did you mean "batchSize"?)']);
    expect(problems('responseTimeuot: 5')).toEqual(['cfg.yaml:1: unknown key "responseTimeuot" (did you mean "responseTimeout"?)']);
  });

  test('maxBatchDelay is a number of ms or auto, and maxLatencyMs bounds auto', () => {
    expect(resolveModelConfig(parseModelConfig('batchSize: 8\nmaxBatchDelay: auto\nmaxLatencyMs: 5\n'))).toMatchObject({
      maxBatchDelayMs: 'auto',
      maxLatencyMs: 5,
    });
    expect(problems('maxBatchDelay: fast\n')).toEqual(['cfg.yaml:1: maxBatchDelay: must be integer or "auto"']);
    expect(problems('maxBatchDelay: -1\n')).toEqual(['cfg.yaml:1: maxBatchDelay: must be >= 0 or "auto"']);
  });

  test('an empty handler section is no settings', () => {
    expect(resolveModelConfig(parseModelConfig('handler:\n')).handler).toEqual({});
  });

  test('the worker range is checked together with every other problem, in line order', () => {
    expect(problems('maxWorkers: 1\nminWorkers: 3\nbatchSize: big\n')).toEqual([
      'cfg.yaml:1: maxWorkers (1) is below minWorkers (3)',
      'cfg.yaml:3: batchSize: must be integer',
    ]);
  });

  test('ranges: batchSize ≥ 1, maxWorkers ≥ minWorkers', () => {
    expect(problems('batchSize: 0')).toEqual(['cfg.yaml:1: batchSize: must be >= 1']);
    expect(problems('minWorkers: 4\nmaxWorkers: 2')).toEqual(['cfg.yaml:2: maxWorkers (2) is below minWorkers (4)']);
  });

  test('YAML syntax errors and duplicate keys carry their line', () => {
    expect(problems('batchSize: 1\nbatchSize: 2\n')[0]).toMatch(/^cfg\.yaml:2: Map keys must be unique/);
    expect(problems('handler:\n  a: [1, 2\n')[0]).toMatch(/^cfg\.yaml:\d: /);
  });

  test('a document that is not a mapping', () => {
    expect(problems('- 1\n- 2\n')).toEqual(['cfg.yaml:1: must be object']);
  });
});
