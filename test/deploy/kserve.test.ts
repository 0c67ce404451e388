import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveServerConfig } from '@kiln/server';
import { Pod } from 'kubernetes-models/v1/Pod';
import { describe, expect, test } from 'vitest';
import { KNOWN_VARIABLES, ROOT, isRecord, readManifests, typeCheck, validateSchema } from './schemas.js';

// deploy/kserve: the ClusterServingRuntime and InferenceService hold only the fields KServe's API types declare
// (pkg/apis/serving/v1alpha1/servingruntime_types.go, v1beta1/predictor.go, component.go and model.go), with
// the values KServe accepts; their containers are valid Kubernetes containers; and the example
// config.properties, read as the runtime makes Kiln read it, gives the store and addresses KServe expects.

/** ServingRuntimeSpec, with ServingRuntimePodSpec inlined. */
const SERVING_RUNTIME_SPEC = [
  'supportedModelFormats',
  'multiModel',
  'disabled',
  'protocolVersions',
  'workerSpec',
  'containers',
  'volumes',
  'nodeSelector',
  'affinity',
  'tolerations',
  'labels',
  'annotations',
  'imagePullSecrets',
  'hostIPC',
  'grpcEndpoint',
  'grpcDataEndpoint',
  'httpDataEndpoint',
  'replicas',
  'storageHelper',
  'builtInAdapter',
];
const SUPPORTED_MODEL_FORMAT = ['name', 'version', 'autoSelect', 'priority'];
/** InferenceServiceProtocol: v1, v2, grpc-v1, grpc-v2. */
const PROTOCOLS = ['v1', 'v2', 'grpc-v1', 'grpc-v2'];
const INFERENCE_SERVICE_SPEC = ['predictor', 'explainer', 'transformer'];
/** PredictorSpec's own fields and ComponentExtensionSpec's (its PodSpec fields are not used here). */
const PREDICTOR = [
  'model',
  'storageUris',
  'workerSpec',
  ...['sklearn', 'xgboost', 'tensorflow', 'pytorch', 'triton', 'onnx', 'huggingface', 'pmml', 'lightgbm', 'paddle'],
  ...['minReplicas', 'maxReplicas', 'scaleTarget', 'scaleMetric', 'scaleMetricType', 'containerConcurrency', 'timeout'],
  ...['canaryTrafficPercent', 'logger', 'batcher', 'labels', 'annotations', 'deploymentStrategy', 'autoScaling'],
];
/** ModelSpec: modelFormat and runtime, then PredictorExtensionSpec's own fields (its Container fields are not used here). */
const MODEL_SPEC = ['modelFormat', 'runtime', 'storageUri', 'runtimeVersion', 'protocolVersion', 'storage'];
const MODEL_FORMAT = ['name', 'version'];

function record(v: unknown, label: string): Record<string, unknown> {
  if (!isRecord(v)) throw new Error(`${label} is not a mapping`);
  return v;
}

function list(v: unknown, label: string): unknown[] {
  if (!Array.isArray(v)) throw new Error(`${label} is not a list`);
  return v;
}

/** The keys of a mapping, checked against the fields its type declares. */
function fields(v: unknown, allowed: string[], label: string): Record<string, unknown> {
  const r = record(v, label);
  for (const key of Object.keys(r)) expect(allowed, `${label}.${key}`).toContain(key);
  return r;
}

const manifests = readManifests('deploy/kserve');
const byKind = (kind: string) => {
  const found = manifests.filter((m) => m.object.kind === kind);
  expect(found).toHaveLength(1);
  return found[0]!.object;
};
const runtime = byKind('ClusterServingRuntime');
const service = byKind('InferenceService');
const runtimeSpec = record(runtime.spec, 'spec');
const containers = list(runtimeSpec.containers, 'spec.containers');
const container = record(containers[0], 'spec.containers[0]');
const env = Object.fromEntries(list(container.env, 'env').map((e) => [record(e, 'env').name, record(e, 'env').value]));
const CONFIG = join(ROOT, 'deploy/kserve/config.properties');

/** Kiln's config as the runtime's container resolves it, with the config file at `file`. */
function resolveInRuntime(file: string) {
  const variables: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(env)) if (typeof name === 'string' && typeof value === 'string') variables[name] = value;
  return resolveServerConfig({ env: { ...variables, TS_CONFIG_FILE: file, KILN_STATE_DIR: mkdtempSync(join(tmpdir(), 'kiln-state-')) } });
}

describe('the ClusterServingRuntime', () => {
  test('has only the fields KServe declares, with values it accepts', () => {
    expect(Object.keys(runtime).sort()).toEqual(['apiVersion', 'kind', 'metadata', 'spec']);
    expect(runtime.apiVersion).toBe('serving.kserve.io/v1alpha1');
    expect(record(runtime.metadata, 'metadata')).toEqual({ name: 'kiln' });
    fields(runtimeSpec, SERVING_RUNTIME_SPEC, 'spec');
    const formats = list(runtimeSpec.supportedModelFormats, 'supportedModelFormats').map((f, i) => {
      const format = fields(f, SUPPORTED_MODEL_FORMAT, `supportedModelFormats[${i}]`);
      expect(typeof format.name).toBe('string');
      expect(typeof format.version).toBe('string');
      expect(typeof format.autoSelect).toBe('boolean');
      expect(Number.isInteger(format.priority) && Number(format.priority) >= 1).toBe(true);
      return format;
    });
    // Kiln serves archives, never a bare model.onnx: claiming `onnx` would make KServe pick it for one.
    expect(formats).toEqual([{ name: 'kiln', version: '1', autoSelect: true, priority: 1 }]);
    expect(runtimeSpec.protocolVersions).toEqual(['v1', 'v2']);
    for (const p of list(runtimeSpec.protocolVersions, 'protocolVersions')) expect(PROTOCOLS).toContain(p);
    for (const value of Object.values(record(runtimeSpec.annotations, 'annotations'))) expect(typeof value).toBe('string');
  });

  test('its container and volumes are valid Kubernetes ones, without unknown fields', () => {
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'kiln' }, spec: { containers, volumes: runtimeSpec.volumes } };
    expect(Pod.is(pod)).toBe(true);
    expect(() => validateSchema(pod)).not.toThrow();
    expect(typeCheck([{ label: 'the runtime as a pod', value: pod }])).toEqual([]);
  });

  test('the container is kserve-container on 8080, probed on the v2 health routes, non-root and read-only', () => {
    expect(containers).toHaveLength(1);
    expect(container).toMatchObject({ name: 'kserve-container', image: 'kiln:0.1.0' });
    // Knative allows one port, named http1 (HTTP/1.1) or h2c; KServe sends requests to 8080.
    expect(container.ports).toEqual([{ name: 'http1', containerPort: 8080, protocol: 'TCP' }]);
    expect(container.readinessProbe).toMatchObject({ httpGet: { path: '/v2/health/ready', port: 8080 } });
    expect(container.livenessProbe).toMatchObject({ httpGet: { path: '/v2/health/live', port: 8080 } });
    expect(env.KILN_HEALTH_AUTH).toBe('off');
    expect(container.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 10001,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    });
    const volumes = new Map(list(runtimeSpec.volumes, 'volumes').map((v) => [record(v, 'volume').name, record(v, 'volume')]));
    const mounts = new Map(
      list(container.volumeMounts, 'volumeMounts').map((m) => [record(m, 'mount').mountPath, record(m, 'mount').name]),
    );
    for (const path of ['/tmp', '/var/lib/kiln']) expect(volumes.get(mounts.get(path))).toHaveProperty('emptyDir');
    expect(env.KILN_STATE_DIR).toBe('/var/lib/kiln');
    for (const name of Object.keys(env).filter((n) => n.startsWith('KILN_'))) expect(KNOWN_VARIABLES, name).toContain(name);
    // KServe's clients know no token: the image's entrypoint must not make one up.
    expect(env.KILN_GENERATE_TOKEN).toBe('false');
  });

  test('Kiln reads the config.properties KServe mounts, and serves KServe on 8080 and Prometheus on 8082', () => {
    expect(env.TS_CONFIG_FILE).toBe('/mnt/models/config/config.properties');
    const config = resolveInRuntime(CONFIG);
    expect(config).toMatchObject({
      modelStore: '/mnt/models/model-store',
      models: ['all'],
      inferenceAddress: 'http://0.0.0.0:8080',
      managementAddress: 'http://127.0.0.1:8081',
      metricsAddress: 'http://0.0.0.0:8082',
      jobQueueSize: 100,
      token: undefined,
    });
    // Every key of the example is one Kiln uses.
    expect(config.warnings).toEqual([]);
    // The file says the same without the runtime's variables.
    expect(resolveServerConfig({ tsConfig: CONFIG })).toMatchObject({
      inferenceAddress: 'http://0.0.0.0:8080',
      metricsAddress: 'http://0.0.0.0:8082',
    });
    const annotations = record(runtimeSpec.annotations, 'annotations');
    expect(annotations['prometheus.kserve.io/port']).toBe(new URL(config.metricsAddress).port);
    expect(annotations['prometheus.kserve.io/path']).toBe('/metrics');
  });

  test("a config.properties written for TorchServe on KServe (port 8085 behind KServe's wrapper) still serves on 8080", () => {
    const dir = mkdtempSync(join(tmpdir(), 'kiln-kserve-'));
    const file = join(dir, 'config.properties');
    writeFileSync(
      file,
      [
        'inference_address=http://0.0.0.0:8085',
        'management_address=http://0.0.0.0:8085',
        'metrics_address=http://0.0.0.0:8082',
        'enable_metrics_api=true',
        'metrics_format=prometheus',
        'number_of_netty_threads=4',
        'job_queue_size=10',
        'model_store=/mnt/models/model-store',
        'model_snapshot={"name":"startup.cfg","modelCount":1,"models":{"mnist":{"1.0":{"defaultVersion":true,"marName":"mnist.mar","minWorkers":1,"maxWorkers":5,"batchSize":1,"maxBatchDelay":10,"responseTimeout":120}}}}',
      ].join('\n'),
    );
    expect(resolveInRuntime(file)).toMatchObject({
      inferenceAddress: 'http://0.0.0.0:8080',
      metricsAddress: 'http://0.0.0.0:8082',
      modelStore: '/mnt/models/model-store',
      models: ['mnist=mnist.mar'],
    });
  });
});

describe('the InferenceService', () => {
  test('has only the fields KServe declares, and picks the kiln runtime with a protocol it serves', () => {
    expect(Object.keys(service).sort()).toEqual(['apiVersion', 'kind', 'metadata', 'spec']);
    expect(service.apiVersion).toBe('serving.kserve.io/v1beta1');
    // KServe's name rule for an InferenceService: lower case alphanumerics or '-', starting with a letter.
    expect(record(service.metadata, 'metadata').name).toMatch(/^[a-z]([-a-z0-9]*[a-z0-9])?$/);
    const spec = fields(service.spec, INFERENCE_SERVICE_SPEC, 'spec');
    const predictor = fields(spec.predictor, PREDICTOR, 'spec.predictor');
    const model = fields(predictor.model, MODEL_SPEC, 'spec.predictor.model');
    const format = fields(model.modelFormat, MODEL_FORMAT, 'spec.predictor.model.modelFormat');

    expect(model.runtime).toBe(record(runtime.metadata, 'metadata').name);
    expect(list(runtimeSpec.supportedModelFormats, 'formats')).toContainEqual(expect.objectContaining(format));
    expect(model.protocolVersion).toBe('v2');
    expect(runtimeSpec.protocolVersions).toContain(model.protocolVersion);
    expect(model.storageUri).toMatch(/^(pvc|gs|s3|https?|hdfs|webhdfs|oci|hf):\/\/\S+$/);
    expect(Number(predictor.minReplicas)).toBeLessThanOrEqual(Number(predictor.maxReplicas));
  });
});
