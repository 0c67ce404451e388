import { describe, expect, test } from 'vitest';
import { parseModelConfig } from '@kiln/handler-sdk/runtime';
import { convertConfig } from './convert-config.js';

describe('convertConfig', () => {
  test('keeps the keys Kiln shares with TorchServe as written, and drops the rest with one reason each', () => {
    const { text, kept, dropped } = convertConfig(
      [
        'minWorkers: 2 # two workers',
        'maxWorkers: 4',
        'batchSize: 8',
        'maxBatchDelay: 50',
        'responseTimeout: 60',
        'startupTimeout: 300',
        'jobQueueSize: 500',
        'clientTimeoutInMills: 2000',
        'deviceType: GPU',
        'deviceIds: [0, 1]',
        'parallelType: pptp',
        'continuousBatching: true',
        'sequenceBatching: true',
        'maxRetryTimeoutInSec: 60',
        'tokenizer_path: /opt/tok',
        'handler:',
        '  max_length: 128',
        '',
      ].join('\n'),
      'model-config.yaml',
    );
    expect(parseModelConfig(text)).toEqual({
      minWorkers: 2,
      maxWorkers: 4,
      batchSize: 8,
      maxBatchDelay: 50,
      responseTimeout: 60,
      startupTimeout: 300,
      jobQueueSize: 500,
      clientTimeoutInMills: 2000,
      deviceType: 'gpu',
      deviceIds: [0, 1],
      handler: { max_length: 128 },
    });
    expect(kept).toHaveLength(11);
    expect(dropped.map((line) => line.slice(0, line.indexOf(':')))).toEqual([
      'parallelType',
      'continuousBatching',
      'sequenceBatching',
      'maxRetryTimeoutInSec',
      'tokenizer_path',
    ]);
    expect(dropped[4]).toContain('move it under handler:');
    expect(text).toContain('minWorkers: 2 # two workers');
    for (const line of dropped) expect(text).toContain(`#   ${line}\n`);
  });

  test('values Kiln refuses are dropped too, naming the rule', () => {
    const { text, dropped } = convertConfig('batchSize: 0\nminWorkers: 2\ndeviceType: neuron\n', 'model-config.yaml');
    expect(parseModelConfig(text)).toEqual({ minWorkers: 2 });
    expect(dropped).toHaveLength(2);
    expect(dropped[0]).toMatch(/^batchSize: 0 is not a value Kiln takes \(.*1/);
    expect(dropped[1]).toMatch(/^deviceType: "neuron" is not a value Kiln takes/);
  });

  test('no TorchServe config: a file of comments that Kiln reads as no settings', () => {
    const { text, dropped } = convertConfig(undefined, 'model-config.yaml');
    expect(dropped).toEqual([]);
    expect(text.split('\n').every((line) => line === '' || line.startsWith('#'))).toBe(true);
    expect(parseModelConfig(text)).toEqual({});
  });
});
