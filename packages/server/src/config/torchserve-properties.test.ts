import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { parseProperties } from './java-properties.js';
import { resolveServerConfig, type ConfigSources } from './server-config.js';
import { TORCHSERVE_KEYS, renderTorchServeKeysTable, translateTorchServeProperties } from './torchserve-properties.js';

const translate = (text: string, env: NodeJS.ProcessEnv = {}) =>
  translateTorchServeProperties(parseProperties(text), 'config.properties', env);

/** The error a call throws, for its code and message. */
function thrown(run: () => unknown): Error & { code?: string } {
  try {
    run();
  } catch (error) {
    if (error instanceof Error) return error;
  }
  throw new Error('expected an error');
}

const dir = mkdtempSync(join(tmpdir(), 'kiln-ts-config-'));
const file = (name: string, text: string) => {
  writeFileSync(join(dir, name), text);
  return name;
};

describe('translateTorchServeProperties', () => {
  test("KServe's config.properties: addresses, store, queue and sizes translated, the models of its snapshot loaded, the rest warned once each", () => {
    const { values, keyOf, warnings } = translate(
      [
        'inference_address=http://0.0.0.0:8085',
        'management_address=http://0.0.0.0:8085',
        'metrics_address=http://0.0.0.0:8082',
        'grpc_inference_port=7070',
        'grpc_management_port=7071',
        'enable_metrics_api=true',
        'metrics_format=prometheus',
        'number_of_netty_threads=4',
        'job_queue_size=10',
        'enable_envvars_config=true',
        'install_py_dep_per_model=true',
        'max_response_size=655350000',
        'default_response_timeout=600',
        'model_store=/mnt/models/model-store',
        'model_snapshot={"name":"startup.cfg","modelCount":1,"models":{"mnist":{"1.0":{"defaultVersion":true,"marName":"mnist.mar","minWorkers":1,"maxWorkers":5,"batchSize":1,"maxBatchDelay":10,"responseTimeout":120}}}}',
      ].join('\n'),
    );
    expect(values).toEqual({
      inferenceAddress: 'http://0.0.0.0:8085',
      metricsAddress: 'http://0.0.0.0:8082',
      jobQueueSize: 10,
      maxResponseSize: 655_350_000,
      modelStore: '/mnt/models/model-store',
      models: ['mnist=mnist.mar'],
      tsGrpcInferenceAddress: '127.0.0.1:7070',
      tsGrpcManagementAddress: '127.0.0.1:7071',
    });
    expect(keyOf).toMatchObject({ jobQueueSize: 'job_queue_size', models: 'model_snapshot' });
    const warned = warnings.map((w) => /^config\.properties: (\w+)/.exec(w)?.[1]);
    expect(warned).toEqual([
      'management_address',
      'number_of_netty_threads',
      'enable_envvars_config',
      'install_py_dep_per_model',
      'default_response_timeout',
      'model_snapshot',
    ]);
    expect(warnings).toContain(
      "config.properties: default_response_timeout is not used: Kiln has no server-wide response timeout; set responseTimeout (seconds, default 120) in each model's model-config.yaml",
    );
    expect(warnings.find((w) => w.includes('model_snapshot'))).toBe(
      "config.properties: model_snapshot: its models are loaded (mnist), but not their settings (minWorkers, maxWorkers, batchSize, maxBatchDelay, responseTimeout): Kiln takes a model's settings from the model-config.yaml in its archive (kiln archive -c)",
    );
    expect(warnings[0]).toContain('the management API stays on its default (http://127.0.0.1:8081)');
  });

  test("gRPC's host and port keys make one address each, either key's default filling in", () => {
    expect(translate('grpc_inference_address=0.0.0.0\ngrpc_inference_port=9070\ngrpc_management_address=::1').values).toEqual({
      tsGrpcInferenceAddress: '0.0.0.0:9070',
      tsGrpcManagementAddress: '[::1]:7071',
    });
    expect(translate('grpc_management_port=9071').values).toEqual({ tsGrpcManagementAddress: '127.0.0.1:9071' });
    const bad = translate('grpc_inference_address=0.0.0.0\ngrpc_inference_port=70a');
    expect(bad.values).toEqual({});
    expect(bad.problems).toEqual(['grpc_inference_port: must be a port number (0 to 65535), received "70a"']);
  });

  test.each([
    ['load_models=all', ['all']],
    ['load_models=ALL', ['all']],
    ['load_models=resnet.mar', ['resnet.mar']],
    ['load_models=a=a.mar, b.mar,,c=sub/c.tar.gz', ['a=a.mar', 'b.mar', 'c=sub/c.tar.gz']],
  ])('%s → models %j', (line, models) => {
    expect(translate(line)).toMatchObject({ values: { models }, warnings: [] });
  });

  test('load_models is left out, with a warning, when model_snapshot is set; the default version comes first', () => {
    const snapshot = '{"models":{"m":{"1.0":{"marName":"m1.mar"},"2.0":{"marName":"m2.mar","defaultVersion":true}}}}';
    const { values, warnings } = translate(`load_models=all\nmodel_snapshot=${snapshot}`);
    expect(values.models).toEqual(['m=m2.mar', 'm=m1.mar']);
    expect(warnings).toEqual([
      'config.properties: load_models is not used: model_snapshot is set, and its models are loaded instead, as in TorchServe',
    ]);
  });

  test('default_workers_per_model becomes workers; 0 (one per core in TorchServe) is warned', () => {
    expect(translate('default_workers_per_model=4').values).toEqual({ workers: 4 });
    const zero = translate('default_workers_per_model=0');
    expect(zero.values).toEqual({});
    expect(zero.warnings).toEqual([
      expect.stringMatching(/^config\.properties: default_workers_per_model=0 is not used: TorchServe then starts/),
    ]);
  });

  test('booleans, lists and modes: a value Kiln already behaves as is not warned, the other one is', () => {
    const { values, warnings } = translate(
      [
        'enable_model_api=True',
        // As for java.util.Properties, a backslash of a regular expression is written twice.
        'allowed_urls=https://models\\\\.example\\\\.com/.*,file:///srv/.*',
        'cors_allowed_origin=https://app.example.com',
        'disable_token_authorization=true',
        'metrics_mode=prometheus',
        'ts_open_inference_protocol=true',
      ].join('\n'),
    );
    expect(values).toEqual({
      enableModelApi: true,
      allowedUrls: ['https://models\\.example\\.com/.*', 'file:///srv/.*'],
      corsAllowedOrigins: ['https://app.example.com'],
    });
    expect(warnings).toEqual([]);
    const other = translate(
      'disable_token_authorization=false\nmetrics_mode=log\nenable_metrics_api=false\nenable_token_authorization=true',
    );
    expect(other.values).toEqual({});
    expect(other.warnings).toEqual([
      expect.stringContaining(
        "disable_token_authorization=false is not used: Kiln does not make TorchServe's key_file.json; set tokenFile",
      ),
      expect.stringContaining("metrics_mode=log is not used: Kiln's metrics are always Prometheus text on /metrics"),
      expect.stringContaining('enable_metrics_api=false is not used: Kiln always serves the metrics API'),
      expect.stringContaining('enable_token_authorization=true is not used'),
    ]);
  });

  test('the per-model models JSON is warned, naming its models and model-config.yaml', () => {
    const { values, warnings } = translate('models={"noop": {"1.0": {"batchSize": 4, "minWorkers": 2}}, "other": {}}');
    expect(values).toEqual({});
    expect(warnings).toEqual([
      "config.properties: models (noop, other) is not used: the server config sets no model's settings; put minWorkers, maxWorkers, batchSize, maxBatchDelay, responseTimeout, startupTimeout in each archive's model-config.yaml (kiln archive -c), or give them when registering (POST /models?batch_size=...)",
    ]);
  });

  test('a key TorchServe does not have, and a key given twice, are warned; a secret value is never repeated', () => {
    const { warnings } = translate('NUM_WORKERS=1\njob_queue_size=5\njob_queue_size=6\nkeystore_pass=hunter2');
    expect(warnings).toEqual([
      'config.properties: NUM_WORKERS is not used: it is not a TorchServe setting Kiln knows (TorchServe also ignores it)',
      'config.properties: job_queue_size is set on lines 2, 3; the last one counts, as in TorchServe',
      'config.properties: keystore_pass is not used: Kiln serves plain HTTP; terminate TLS in a proxy in front of it',
    ]);
    expect(warnings.join('\n')).not.toContain('hunter2');
  });

  test('$$NAME$$ is replaced from the environment, as TorchServe does', () => {
    expect(translate('inference_address=http://0.0.0.0:$$PORT$$', { PORT: '9090' }).values).toEqual({
      inferenceAddress: 'http://0.0.0.0:9090',
    });
  });

  test('values Kiln cannot serve are problems naming the TorchServe key', () => {
    const { problems } = translate(
      [
        'inference_address=https://0.0.0.0:8443',
        'management_address=unix:/tmp/ts.sock',
        'load_models=r=https://example.com/r.mar',
        'model_snapshot={not json',
        'enable_metrics_api=yes',
        'model_store=$$STORE$$',
      ].join('\n'),
    );
    expect(problems).toEqual([
      // Variables are replaced as the file is read, before any key is translated.
      'model_store: $$STORE$$ names the variable STORE, which is not set',
      'inference_address: https://0.0.0.0:8443 is HTTPS: Kiln serves plain HTTP, so terminate TLS in a proxy in front of it and give an http:// address',
      'management_address: unix:/tmp/ts.sock is a Unix socket: Kiln listens on TCP; give an http://host:port address',
      expect.stringMatching(/^model_snapshot: is not JSON: /),
      'enable_metrics_api: must be true or false, received "yes"',
    ]);
    // load_models was left out for model_snapshot, so its URL was not looked at; alone, it is refused.
    expect(translate('load_models=r=https://example.com/r.mar').problems).toEqual([
      'load_models: r=https://example.com/r.mar is a URL: Kiln loads archives at start from files; download it into model_store and name the file',
    ]);
  });

  test('addresses on port 0 are never the same address', () => {
    expect(translate('inference_address=http://127.0.0.1:0\nmanagement_address=http://127.0.0.1:0').values).toEqual({
      inferenceAddress: 'http://127.0.0.1:0',
      managementAddress: 'http://127.0.0.1:0',
    });
  });

  test('the docs table has one row per TorchServe key', () => {
    const rows = renderTorchServeKeysTable().split('\n').slice(2);
    expect(rows.map((row) => /^\| `([^`]+)` \|/.exec(row)?.[1])).toEqual(Object.keys(TORCHSERVE_KEYS));
  });
});

describe('resolveServerConfig with a config.properties', () => {
  const properties =
    'inference_address=http://0.0.0.0:8085\njob_queue_size=10\ndefault_workers_per_model=2\nmodel_store=store\nnumber_of_netty_threads=4\n';
  const resolve = (sources: ConfigSources) => resolveServerConfig({ cwd: dir, ...sources });

  test('--ts-config, --config x.properties, --config with key=value lines, and TS_CONFIG_FILE read it alike', () => {
    file('config.properties', properties);
    file('ts-config', properties);
    for (const sources of [
      { tsConfig: 'ts-config' },
      { file: 'config.properties' },
      { file: 'ts-config' },
      { env: { TS_CONFIG_FILE: 'ts-config' } },
    ]) {
      const config = resolve(sources);
      expect(config).toMatchObject({
        inferenceAddress: 'http://0.0.0.0:8085',
        jobQueueSize: 10,
        workers: 2,
        modelStore: join(dir, 'store'),
      });
      expect(config.warnings).toEqual([expect.stringMatching(/^(config\.properties|ts-config): number_of_netty_threads is not used/)]);
    }
  });

  test('precedence stays flags > KILN_* > file > defaults; TS_CONFIG_FILE is read only when no other file is named', () => {
    file('config.properties', properties);
    file('kiln.yaml', 'jobQueueSize: 3\n');
    const config = resolve({ tsConfig: 'config.properties', env: { KILN_JOB_QUEUE_SIZE: '20' }, flags: { workers: 5 } });
    expect(config).toMatchObject({
      workers: 5,
      jobQueueSize: 20,
      inferenceAddress: 'http://0.0.0.0:8085',
      metricsAddress: 'http://127.0.0.1:8082',
    });
    const both = resolve({ env: { KILN_CONFIG: 'kiln.yaml', TS_CONFIG_FILE: 'config.properties' } });
    expect(both).toMatchObject({ jobQueueSize: 3, warnings: [] });
    expect(resolve({ file: 'kiln.yaml', env: { TS_CONFIG_FILE: 'config.properties' } }).jobQueueSize).toBe(3);
    // A flag names the file over a variable.
    expect(resolve({ tsConfig: 'config.properties', env: { KILN_CONFIG: 'kiln.yaml' } }).jobQueueSize).toBe(10);
  });

  test('every problem of the file is reported together, schema errors naming the TorchServe key; the file is named as given', () => {
    file(
      'bad.properties',
      'inference_address=https://0.0.0.0:8443\ndefault_workers_per_model=300\njob_queue_size=ten\nenable_model_api=yes\n',
    );
    const error = thrown(() => resolve({ tsConfig: 'bad.properties' }));
    expect(error.code).toBe('KILN_ERR_SERVER_CONFIG_INVALID');
    expect(error.message).toBe(
      [
        'invalid server configuration from bad.properties:',
        '  inference_address: https://0.0.0.0:8443 is HTTPS: Kiln serves plain HTTP, so terminate TLS in a proxy in front of it and give an http:// address',
        '  default_workers_per_model: must be <= 256',
        '  job_queue_size: must be integer',
        '  enable_model_api: must be boolean',
      ].join('\n'),
    );
    expect(thrown(() => resolve({ tsConfig: 'missing.properties' })).message).toMatch(/^--ts-config missing\.properties: no such file/);
    expect(thrown(() => resolve({ env: { TS_CONFIG_FILE: 'missing.properties' } })).message).toMatch(
      /^TS_CONFIG_FILE missing\.properties: no such file/,
    );
    expect(thrown(() => resolve({ file: 'a.yaml', tsConfig: 'b.properties' })).message).toBe(
      '--config a.yaml and --ts-config b.properties both name a config file; give one of them',
    );
    file('bad-escape.properties', 'model_store=\\u12\n');
    expect(thrown(() => resolve({ tsConfig: 'bad-escape.properties' })).message).toContain(
      'is not a Java properties file: line 1: malformed \\uXXXX escape',
    );
  });

  test('a YAML file stays YAML, and what is neither is still refused', () => {
    file('kiln.yaml', 'workers: 2\n');
    expect(resolve({ file: 'kiln.yaml' })).toMatchObject({ workers: 2, warnings: [] });
    file('list.yaml', '- a\n- b\n');
    expect(thrown(() => resolve({ file: 'list.yaml' })).message).toContain('must be object');
  });
});
