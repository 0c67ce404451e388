import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveServerConfig } from '@kiln/server';
import { Pod } from 'kubernetes-models/v1/Pod';
import { describe, expect, test } from 'vitest';
import { tempDir } from '../support/kiln.js';
import { KSERVE_PROPERTIES, invocation } from './entrypoint.js';
import { KNOWN_VARIABLES, ROOT, isRecord, readManifests, typeCheck, validateSchema } from './schemas.js';

// deploy/kserve: the ClusterServingRuntimes (REST and gRPC) and InferenceServices hold only the fields KServe's
// API types declare (pkg/apis/serving/v1alpha1/servingruntime_types.go, v1beta1/predictor.go, component.go and
// model.go), with the values KServe accepts; their containers are valid Kubernetes containers; and the example
// config.properties, read as the runtimes make Kiln read it, gives the store and addresses KServe expects.

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
const ofKind = (kind: string) => manifests.filter((m) => m.object.kind === kind).map((m) => m.object);
const named = (objects: Record<string, unknown>[], name: string) => {
  const found = objects.filter((o) => record(o.metadata, 'metadata').name === name);
  expect(found).toHaveLength(1);
  return found[0]!;
};
const runtimes = ofKind('ClusterServingRuntime');
const CONFIG = join(ROOT, 'deploy/kserve/config.properties');

/** A runtime's spec, its containers, its one container, and that container's variables. */
function partsOf(runtime: Record<string, unknown>) {
  const spec = record(runtime.spec, 'spec');
  const containers = list(spec.containers, 'spec.containers');
  const container = record(containers[0], 'spec.containers[0]');
  const env: Record<string, string> = {};
  for (const e of list(container.env, 'env')) {
    const { name, value } = record(e, 'env');
    if (typeof name === 'string' && typeof value === 'string') env[name] = value;
  }
  return { runtime, spec, containers, container, env };
}

/** Kiln's config as the runtime's container resolves it, with the config file at `file`. */
function resolveInRuntime(env: Record<string, string>, file: string) {
  return resolveServerConfig({ env: { ...env, TS_CONFIG_FILE: file, KILN_STATE_DIR: mkdtempSync(join(tmpdir(), 'kiln-state-')) } });
}

/** The runtimes: REST (v1, v2) and gRPC (grpc-v2), one each, since Knative gives a pod one port. */
const RUNTIMES = [
  { name: 'kiln', protocols: ['v1', 'v2'], port: { name: 'http1', containerPort: 8080, protocol: 'TCP' } },
  { name: 'kiln-grpc', protocols: ['grpc-v2'], port: { name: 'h2c', containerPort: 8085, protocol: 'TCP' } },
];

test('deploy/kserve holds the two runtimes, kiln and kiln-grpc', () => {
  expect(runtimes.map((r) => record(r.metadata, 'metadata').name).sort()).toEqual(RUNTIMES.map((r) => r.name).sort());
});

describe.each(RUNTIMES)('the ClusterServingRuntime $name', ({ name, protocols, port }) => {
  const { runtime, spec: runtimeSpec, containers, container, env } = partsOf(named(runtimes, name));

  test('has only the fields KServe declares, with values it accepts', () => {
    expect(Object.keys(runtime).sort()).toEqual(['apiVersion', 'kind', 'metadata', 'spec']);
    expect(runtime.apiVersion).toBe('serving.kserve.io/v1alpha1');
    expect(record(runtime.metadata, 'metadata')).toEqual({ name });
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
    expect(runtimeSpec.protocolVersions).toEqual(protocols);
    for (const p of list(runtimeSpec.protocolVersions, 'protocolVersions')) expect(PROTOCOLS).toContain(p);
    for (const value of Object.values(record(runtimeSpec.annotations, 'annotations'))) expect(typeof value).toBe('string');
  });

  test('its container and volumes are valid Kubernetes ones, without unknown fields', () => {
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name }, spec: { containers, volumes: runtimeSpec.volumes } };
    expect(Pod.is(pod)).toBe(true);
    expect(() => validateSchema(pod)).not.toThrow();
    expect(typeCheck([{ label: 'the runtime as a pod', value: pod }])).toEqual([]);
  });

  test(`the container is kserve-container on ${port.containerPort} (${port.name}), probed on the v2 health routes of 8080, non-root and read-only`, () => {
    expect(containers).toHaveLength(1);
    expect(container).toMatchObject({ name: 'kserve-container', image: 'kiln:0.1.0' });
    // Knative allows one port, named http1 (HTTP/1.1) or h2c (HTTP/2 without TLS, as gRPC); KServe sends requests there.
    expect(container.ports).toEqual([port]);
    // Kiln answers health over HTTP, on 8080. Knative wants a probe port given by name to be the serving port's:
    // these are numbers.
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
    for (const variable of Object.keys(env).filter((n) => n.startsWith('KILN_'))) expect(KNOWN_VARIABLES, variable).toContain(variable);
    // KServe's clients know no token: the image's entrypoint must not make one up.
    expect(env.KILN_GENERATE_TOKEN).toBe('false');
  });

  test('Kiln reads the config.properties KServe mounts, and serves REST on 8080 and Prometheus on 8082', () => {
    expect(env.TS_CONFIG_FILE).toBe('/mnt/models/config/config.properties');
    const config = resolveInRuntime(env, CONFIG);
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
    writeFileSync(file, KSERVE_PROPERTIES);
    expect(resolveInRuntime(env, file)).toMatchObject({
      inferenceAddress: 'http://0.0.0.0:8080',
      metricsAddress: 'http://0.0.0.0:8082',
      modelStore: '/mnt/models/model-store',
      models: ['linear=linear.mar'],
    });
  });
});

describe('the ClusterServingRuntime kiln-grpc', () => {
  const rest = partsOf(named(runtimes, 'kiln'));
  const grpc = partsOf(named(runtimes, 'kiln-grpc'));
  const h2c = record(list(grpc.container.ports, 'ports')[0], 'port');

  test('serves KServe v2 gRPC on its one port, beside REST, management, metrics and TorchServe gRPC on ports of their own', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kiln-kserve-'));
    writeFileSync(join(dir, 'config.properties'), KSERVE_PROPERTIES);
    for (const file of [CONFIG, join(dir, 'config.properties')]) {
      const config = resolveInRuntime(grpc.env, file);
      expect(config.grpcAddress, file).toBe(`0.0.0.0:${String(h2c.containerPort)}`);
      const http = [config.inferenceAddress, config.managementAddress, config.metricsAddress].map((a) => new URL(a).port);
      const grpcAddresses = [config.grpcAddress, config.tsGrpcInferenceAddress, config.tsGrpcManagementAddress];
      const listening = [...http, ...grpcAddresses.flatMap((a) => (a === undefined ? [] : [a.slice(a.lastIndexOf(':') + 1)]))];
      expect(new Set(listening).size, `${file}: ${listening.join(' ')}`).toBe(listening.length);
    }
  });

  test("keeps gRPC on through the image's entrypoint, which turns it off in the REST runtime (the file sets inference_address)", () => {
    const exported = (env: Record<string, string>) => {
      const dir = tempDir('kiln-kserve-pod-');
      const pod = { TS_CONFIG_FILE: CONFIG, KILN_STATE_DIR: join(dir, 'state'), KILN_MODELS_DIR: join(dir, 'models') };
      return invocation([], { ...env, ...pod }).env;
    };
    expect(exported(grpc.env).KILN_GRPC_ADDRESS).toBe(`0.0.0.0:${String(h2c.containerPort)}`);
    expect(exported(rest.env).KILN_GRPC_ADDRESS).toBe('off');
  });

  test("is the REST runtime with another protocol and port: KServe's webhook lets both auto-select kiln at one priority", () => {
    // KServe refuses two runtimes that auto-select a format at the same priority only when they share a protocol.
    const protocols = (r: typeof rest) => list(r.spec.protocolVersions, 'protocolVersions');
    expect(protocols(grpc).filter((p) => protocols(rest).includes(p))).toEqual([]);
    expect(grpc.spec.supportedModelFormats).toEqual(rest.spec.supportedModelFormats);
    // The rest is the same: variables (gRPC's address aside), probes, resources, security, volumes, annotations.
    const { KILN_GRPC_ADDRESS, ...grpcEnv } = grpc.env;
    expect(KILN_GRPC_ADDRESS).toBeDefined();
    expect(grpcEnv).toEqual(rest.env);
    const { ports: _g, env: _ge, ...grpcContainer } = grpc.container;
    const { ports: _r, env: _re, ...restContainer } = rest.container;
    expect(grpcContainer).toEqual(restContainer);
    const { protocolVersions: _gp, containers: _gc, ...grpcSpec } = grpc.spec;
    const { protocolVersions: _rp, containers: _rc, ...restSpec } = rest.spec;
    expect(grpcSpec).toEqual(restSpec);
  });
});

const SERVICES = [
  { name: 'ocr', runtime: 'kiln', protocol: 'v2' },
  { name: 'ocr-grpc', runtime: 'kiln-grpc', protocol: 'grpc-v2' },
];

test('deploy/kserve holds an InferenceService for each runtime', () => {
  const names = ofKind('InferenceService').map((s) => String(record(s.metadata, 'metadata').name));
  expect(names.sort()).toEqual(SERVICES.map((s) => s.name).sort());
});

describe.each(SERVICES)('the InferenceService $name', ({ name, runtime: runtimeName, protocol }) => {
  const service = named(ofKind('InferenceService'), name);

  test('has only the fields KServe declares, and picks the kiln runtime with a protocol it serves', () => {
    expect(Object.keys(service).sort()).toEqual(['apiVersion', 'kind', 'metadata', 'spec']);
    expect(service.apiVersion).toBe('serving.kserve.io/v1beta1');
    // KServe's name rule for an InferenceService: lower case alphanumerics or '-', starting with a letter.
    expect(record(service.metadata, 'metadata').name).toMatch(/^[a-z]([-a-z0-9]*[a-z0-9])?$/);
    const spec = fields(service.spec, INFERENCE_SERVICE_SPEC, 'spec');
    const predictor = fields(spec.predictor, PREDICTOR, 'spec.predictor');
    const model = fields(predictor.model, MODEL_SPEC, 'spec.predictor.model');
    const format = fields(model.modelFormat, MODEL_FORMAT, 'spec.predictor.model.modelFormat');

    const runtimeSpec = partsOf(named(runtimes, runtimeName)).spec;
    expect(model.runtime).toBe(runtimeName);
    expect(list(runtimeSpec.supportedModelFormats, 'formats')).toContainEqual(expect.objectContaining(format));
    expect(model.protocolVersion).toBe(protocol);
    expect(runtimeSpec.protocolVersions).toContain(model.protocolVersion);
    // Auto-selection would pick the same runtime: the only one serving the format with that protocol.
    const serving = runtimes.filter((r) => list(partsOf(r).spec.protocolVersions, 'protocolVersions').includes(protocol));
    expect(serving.map((r) => record(r.metadata, 'metadata').name)).toEqual([runtimeName]);
    expect(model.storageUri).toMatch(/^(pvc|gs|s3|https?|hdfs|webhdfs|oci|hf):\/\/\S+$/);
    expect(Number(predictor.minReplicas)).toBeLessThanOrEqual(Number(predictor.maxReplicas));
  });
});
