import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { parseAddress, resolveServerConfig } from './server-config.js';

const dir = mkdtempSync(join(tmpdir(), 'kiln-config-'));
const file = (name: string, text: string) => {
  writeFileSync(join(dir, name), text);
  return name;
};

describe('resolveServerConfig', () => {
  test('defaults: loopback addresses, TorchServe sizes', () => {
    expect(resolveServerConfig()).toMatchObject({
      inferenceAddress: 'http://127.0.0.1:8080',
      managementAddress: 'http://127.0.0.1:8081',
      metricsAddress: 'http://127.0.0.1:8082',
      workers: 1,
      maxRequestSizeBytes: 6_553_500,
      jobQueueSize: 100,
      drainTimeoutMs: 30_000,
    });
  });

  test('precedence: flag > KILN_* environment > config file > default', () => {
    const config = file('kiln.yaml', 'workers: 2\njobQueueSize: 7\nmaxRequestSize: 1000\nmodelStore: store\n');
    const resolved = resolveServerConfig({
      cwd: dir,
      file: config,
      env: { KILN_WORKERS: '3', KILN_JOB_QUEUE_SIZE: '9' },
      flags: { workers: 4 },
    });
    expect(resolved.workers).toBe(4); // flag
    expect(resolved.jobQueueSize).toBe(9); // env over file
    expect(resolved.maxRequestSizeBytes).toBe(1000); // file over default
    expect(resolved.modelStore).toBe(join(dir, 'store'));
    expect(resolved.metricsAddress).toBe('http://127.0.0.1:8082'); // default
  });

  test('KILN_CONFIG names the file when --config does not; JSON works too', () => {
    file('kiln.json', '{"workers": 5}');
    expect(resolveServerConfig({ cwd: dir, env: { KILN_CONFIG: 'kiln.json' } }).workers).toBe(5);
  });

  test('KILN_MODELS is split on spaces and commas', () => {
    expect(resolveServerConfig({ env: { KILN_MODELS: 'a=a.mar b=b.mar,c.mar' } }).models).toEqual(['a=a.mar', 'b=b.mar', 'c.mar']);
  });

  test.each([
    [
      { file: file('bad.yaml', 'workerz: 2\ninferenceAddress: localhost:8080\n') },
      ['unknown key "workerz"', 'inferenceAddress: must match pattern "^http://"'],
    ],
    [{ flags: { metricsAddress: 'https://127.0.0.1:8443' } }, ['--metrics-address: must match pattern "^http://"']],
    [{ env: { KILN_WORKERS: 'many' } }, ['KILN_WORKERS: must be integer']],
    [{ flags: { workers: 0 } }, ['--workers: must be >= 1']],
    [{ file: 'missing.yaml' }, ['--config missing.yaml']],
  ])('errors name the key, the variable or the flag: %j', (sources, messages) => {
    let thrown: unknown;
    try {
      resolveServerConfig({ cwd: dir, ...sources });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toMatchObject({ code: 'KILN_ERR_SERVER_CONFIG_INVALID' });
    for (const m of messages) expect((thrown as Error).message).toContain(m);
  });
});

test('parseAddress', () => {
  expect(parseAddress('http://127.0.0.1:8080')).toEqual({ host: '127.0.0.1', port: 8080 });
  expect(parseAddress('http://[::1]:0')).toEqual({ host: '::1', port: 0 });
  expect(parseAddress('http://localhost')).toEqual({ host: 'localhost', port: 80 });
});
