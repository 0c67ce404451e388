import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ScaledObject, type IScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { MODEL_CONFIG_DEFAULTS } from '@kiln/handler-sdk';
import { resolveServerConfig } from '@kiln/server';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { HorizontalPodAutoscaler, type IHorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap, type IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { describe, expect, test } from 'vitest';
import { parse } from 'yaml';
import { renderChart, type RenderOptions } from '../support/helm-render.js';
import {
  KNOWN_VARIABLES,
  ROOT,
  all,
  envOf,
  kilnContainer,
  kilnMetricFamilies,
  metadataOf,
  one,
  readManifests,
  serverConfig,
  typeCheck,
  validateSchema,
  type Manifest,
} from './schemas.js';

// deploy/kubernetes and the Helm chart in deploy/helm/kiln: valid Kubernetes objects, offline, and right about
// Kiln: its probes, ports, config, token, shutdown arithmetic and the metric the autoscalers read.

const CHART = join(ROOT, 'deploy/helm/kiln');
const plain = readManifests('deploy/kubernetes');
const chart = (options: Partial<RenderOptions> = {}) =>
  renderChart(CHART, { releaseName: 'kiln', namespace: 'default', ...options }).objects.map(({ template, object }) => ({
    file: `deploy/helm/kiln/${template}`,
    object,
  }));

/** The values sets the chart is rendered with, besides its defaults. */
const VALUE_SETS: Record<string, Record<string, unknown>> = {
  'KEDA, a ServiceMonitor and an existing Secret': {
    autoscaling: { keda: { enabled: true } },
    serviceMonitor: { enabled: true, labels: { release: 'prometheus' } },
    token: { existingSecret: 'my-kiln-token' },
  },
  'an HPA and a Secret the chart creates': {
    autoscaling: { hpa: { enabled: true } },
    token: { create: true, value: 'x'.repeat(32) },
    extraEnv: [{ name: 'KILN_LOG_LEVEL', value: 'debug' }],
  },
  'no token, no PodDisruptionBudget': { token: { enabled: false }, pdb: { enabled: false } },
};
const renders: [string, Manifest[]][] = [
  ['deploy/kubernetes', plain],
  ['the chart with its defaults', chart()],
  ...Object.entries(VALUE_SETS).map(([name, values]): [string, Manifest[]] => [`the chart with ${name}`, chart({ values })]),
];

describe.each(renders)('%s', (_, manifests) => {
  test('every object is valid against the Kubernetes schemas and has no unknown field', () => {
    for (const { file, object } of manifests) {
      expect(() => validateSchema(object), file).not.toThrow();
    }
    expect(typeCheck(manifests.map((m) => ({ label: `${m.file} ${String(m.object.kind)}`, value: m.object })))).toEqual([]);
  });

  test('the namespace is left to kubectl, kustomize or helm', () => {
    for (const { object } of manifests) expect(object.metadata).not.toHaveProperty('namespace');
  });

  test('probes: startup and readiness on /v2/health/ready, liveness on /v2/health/live, all on the inference port', () => {
    const container = kilnContainer(one(manifests, Deployment.is));
    expect(container.ports).toEqual([
      { name: 'inference', containerPort: 8080, protocol: 'TCP' },
      { name: 'management', containerPort: 8081, protocol: 'TCP' },
      { name: 'metrics', containerPort: 8082, protocol: 'TCP' },
      { name: 'grpc', containerPort: 8085, protocol: 'TCP' },
      { name: 'ts-grpc', containerPort: 7070, protocol: 'TCP' },
      { name: 'ts-grpc-mgmt', containerPort: 7071, protocol: 'TCP' },
    ]);
    expect(container.startupProbe?.httpGet).toEqual({ path: '/v2/health/ready', port: 'inference' });
    expect(container.readinessProbe?.httpGet).toEqual({ path: '/v2/health/ready', port: 'inference' });
    expect(container.livenessProbe?.httpGet).toEqual({ path: '/v2/health/live', port: 'inference' });
    // The startup probe gives the models minutes to load; liveness restarts only a server that stopped answering.
    const startup = container.startupProbe!;
    expect((startup.periodSeconds ?? 10) * (startup.failureThreshold ?? 3)).toBeGreaterThanOrEqual(300);
    // The probes cannot send the token, so the health routes must not ask for it.
    expect(envOf(container).KILN_HEALTH_AUTH).toBe('off');
  });

  test('runs as uid 10001, non-root, read-only, without capabilities or privilege escalation, with a seccomp profile', () => {
    const deployment = one(manifests, Deployment.is);
    const pod = deployment.spec!.template.spec!;
    const container = kilnContainer(deployment);
    expect(pod.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 10001,
      fsGroup: 10001,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(container.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 10001,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(container.resources?.requests).toHaveProperty('memory');
    expect(container.resources?.limits).toHaveProperty('memory');
    expect(pod.automountServiceAccountToken).toBe(false);
    // Service links would add KILN_SERVICE_HOST, KILN_PORT... to the environment: Kiln's own prefix.
    expect(pod.enableServiceLinks).toBe(false);
    // A read-only root: what Kiln writes goes to emptyDirs.
    const mounts = Object.fromEntries((container.volumeMounts ?? []).map((m) => [m.mountPath, m]));
    const volumes = Object.fromEntries((pod.volumes ?? []).map((v) => [v.name, v]));
    for (const path of ['/tmp', '/var/lib/kiln']) expect(volumes[mounts[path]!.name]?.emptyDir, path).toBeDefined();
    expect(envOf(container).KILN_STATE_DIR).toBe('/var/lib/kiln');
    expect(mounts['/mnt/models']).toMatchObject({ readOnly: true });
    expect(volumes[mounts['/mnt/models']!.name]?.persistentVolumeClaim).toEqual({ claimName: 'kiln-models', readOnly: true });
  });

  test('the grace period covers the preStop sleep, the drain and a batch still running', () => {
    const deployment = one(manifests, Deployment.is);
    const pod = deployment.spec!.template.spec!;
    const sleep = kilnContainer(deployment).lifecycle?.preStop?.sleep?.seconds ?? 0;
    const drainTimeout = Number(serverConfig(manifests).drainTimeoutMs / 1000);
    expect(sleep).toBeGreaterThanOrEqual(5);
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(drainTimeout + sleep);
    // After the drain, a worker finishes the batch in hand within its model's responseTimeout + 5 s.
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(sleep + drainTimeout + MODEL_CONFIG_DEFAULTS.responseTimeoutS + 5);
  });

  test("the ConfigMap's kiln.yaml and the container's KILN_* variables make a config Kiln accepts", () => {
    const container = kilnContainer(one(manifests, Deployment.is));
    const config = serverConfig(manifests);
    const byName = Object.fromEntries((container.ports ?? []).map((p) => [p.name, p.containerPort]));
    expect(config.inferenceAddress).toBe(`http://0.0.0.0:${byName.inference}`);
    expect(config.managementAddress).toBe(`http://0.0.0.0:${byName.management}`);
    expect(config.metricsAddress).toBe(`http://0.0.0.0:${byName.metrics}`);
    expect(config.modelStore).toBe('/mnt/models');
    expect(config.warnings).toEqual([]);
    // Every variable is one of Kiln's or its image's: a misspelt one would be ignored without a word.
    for (const name of Object.keys(envOf(container))) expect(KNOWN_VARIABLES, name).toContain(name);
  });

  test('the token comes from a Secret, as one file at /run/secrets/kiln-token', () => {
    const deployment = one(manifests, Deployment.is);
    const container = kilnContainer(deployment);
    const mount = container.volumeMounts?.find((m) => m.mountPath === '/run/secrets/kiln-token');
    if (envOf(container).KILN_TOKEN_FILE === undefined) {
      // Without a token file, the image's entrypoint would make up a token, a different one in each pod.
      expect(envOf(container).KILN_GENERATE_TOKEN).toBe('false');
      expect(mount).toBeUndefined();
      return;
    }
    expect(envOf(container).KILN_TOKEN_FILE).toBe('/run/secrets/kiln-token');
    expect(mount).toMatchObject({ subPath: 'kiln-token', readOnly: true });
    const volume = deployment.spec!.template.spec!.volumes!.find((v) => v.name === mount!.name)!;
    expect(volume.secret?.items).toEqual([{ key: 'token', path: 'kiln-token' }]);
    expect(volume.secret?.defaultMode).toBe(0o440);
    const secret = all(manifests, Secret.is)[0];
    if (secret !== undefined) expect(secret.metadata?.name).toBe(volume.secret?.secretName);
  });

  test('the Service, PodDisruptionBudget and ServiceMonitor select the pods, by the ports they have', () => {
    const deployment = one(manifests, Deployment.is);
    const labels = deployment.spec!.template.metadata!.labels!;
    const service = one(manifests, Service.is);
    expect(service.spec?.type).toBe('ClusterIP');
    expect(labels).toMatchObject(service.spec!.selector!);
    const ports = new Set(kilnContainer(deployment).ports!.map((p) => p.name));
    expect(service.spec!.ports!.map((p) => [p.name, p.port, p.targetPort])).toEqual([
      ['inference', 8080, 'inference'],
      ['management', 8081, 'management'],
      ['metrics', 8082, 'metrics'],
      ['grpc', 8085, 'grpc'],
      ['ts-grpc', 7070, 'ts-grpc'],
      ['ts-grpc-mgmt', 7071, 'ts-grpc-mgmt'],
    ]);
    for (const port of service.spec!.ports!) expect(ports).toContain(port.targetPort);
    for (const pdb of all(manifests, PodDisruptionBudget.is)) {
      expect(labels).toMatchObject(pdb.spec!.selector!.matchLabels!);
      expect(pdb.spec?.unhealthyPodEvictionPolicy).toBe('AlwaysAllow');
    }
    for (const monitor of all(manifests, ServiceMonitor.is)) {
      expect(service.metadata!.labels).toMatchObject(monitor.spec.selector.matchLabels!);
      expect(monitor.spec.endpoints).toEqual([expect.objectContaining({ port: 'metrics', path: '/metrics' })]);
    }
  });

  test('the autoscalers read kiln_queue_size, a gauge Kiln writes, and drive this Deployment', () => {
    const families = kilnMetricFamilies();
    expect(families.get('kiln_queue_size')).toBe('Gauge');
    const deployment = one(manifests, Deployment.is);
    for (const scaled of all(manifests, ScaledObject.is)) {
      expect(scaled.spec.scaleTargetRef.name).toBe(deployment.metadata?.name);
      const [trigger, ...others] = scaled.spec.triggers;
      expect(others).toEqual([]);
      expect(trigger).toMatchObject({ type: 'prometheus', metricType: 'AverageValue' });
      const query = trigger!.metadata.query ?? '';
      const metrics = [...query.matchAll(/\b[a-zA-Z_:][a-zA-Z0-9_:]*(?=\{|\[)/g)].map((m) => m[0]);
      expect(metrics).toEqual(['kiln_queue_size']);
      for (const metric of metrics) expect([...families.keys()]).toContain(metric);
      expect(query).toMatch(/^sum\(avg_over_time\(kiln_queue_size\{[^}]*service="kiln"[^}]*\}\[1m\]\)\)$/);
      expect(Number(trigger!.metadata.threshold)).toBeGreaterThan(0);
      expect(scaled.spec.minReplicaCount).toBeGreaterThanOrEqual(2);
    }
    for (const hpa of all(manifests, HorizontalPodAutoscaler.is)) {
      expect(hpa.spec?.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: deployment.metadata?.name });
      expect(hpa.spec?.metrics).toEqual([
        { type: 'Pods', pods: { metric: { name: 'kiln_queue_size' }, target: { type: 'AverageValue', averageValue: '5' } } },
      ]);
      expect(hpa.spec?.minReplicas).toBeGreaterThanOrEqual(2);
    }
    // An autoscaler owns the replica count: the Deployment must not set it, or each apply would reset it.
    const autoscaled = all(manifests, ScaledObject.is).length + all(manifests, HorizontalPodAutoscaler.is).length > 0;
    if (autoscaled && !manifests[0]!.file.startsWith('deploy/kubernetes')) expect(deployment.spec).not.toHaveProperty('replicas');
  });
});

/** Kiln's config as the pod would resolve it: the ConfigMap's file, the container's variables, a real token file. */
describe('deploy/kubernetes', () => {
  test('the checks above see a misspelt field, a wrong type, and `off` left unquoted (a boolean to Kubernetes)', () => {
    const text = JSON.stringify(one(plain, Deployment.is));
    const broken = (from: string, to: string): unknown => JSON.parse(text.replace(from, to));
    expect(typeCheck([{ label: 'misspelt', value: broken('"readinessProbe"', '"readinessprobe"') }])).toEqual([
      expect.stringMatching(/^misspelt: Object literal may only specify known properties, and '"readinessprobe"' does not exist/),
    ]);
    expect(() => validateSchema(broken('"containerPort":8080', '"containerPort":"8080"'))).toThrow(/containerPort must be integer/);
    expect(() => validateSchema(broken('"value":"off"', '"value":false'))).toThrow(/value must be string/);
  });

  const kustomization = readFileSync(join(ROOT, 'deploy/kubernetes/kustomization.yaml'), 'utf8');

  test('kustomization.yaml lists every manifest, the optional ones commented out, and only files that exist', () => {
    const doc: unknown = parse(kustomization);
    const resources = typeof doc === 'object' && doc !== null && 'resources' in doc ? doc.resources : undefined;
    expect(resources).toEqual(['configmap.yaml', 'deployment.yaml', 'service.yaml', 'pdb.yaml']);
    const files = [...new Set(plain.map((m) => m.file.replace('deploy/kubernetes/', '')))];
    const named = [...kustomization.matchAll(/^\s*#?\s*(?:- )?([\w.-]+\.yaml)\b/gm)].map((m) => m[1]);
    for (const file of files) expect(named, file).toContain(file);
    for (const file of [...kustomization.matchAll(/([\w.-]+\.yaml)/g)].map((m) => m[1]!)) {
      if (file !== 'kustomization.yaml') expect(files).toContain(file);
    }
  });

  test('the Secret is an example whose placeholder Kiln refuses, so it can never run with a published token', () => {
    const secret = one(plain, Secret.is);
    expect(kustomization).not.toMatch(/^\s*- secret\.example\.yaml/m);
    const dir = mkdtempSync(join(tmpdir(), 'kiln-token-'));
    writeFileSync(join(dir, 'token'), secret.stringData!.token!);
    expect(() => resolveServerConfig({ env: { KILN_TOKEN_FILE: join(dir, 'token') } })).toThrow(/at least 16 characters/);
  });

  test('the KEDA query and the HPA aim at the same queue per replica', () => {
    const scaled = one(plain, ScaledObject.is);
    const hpa = one(plain, HorizontalPodAutoscaler.is);
    expect(scaled.spec.triggers[0]!.metadata.threshold).toBe(hpa.spec?.metrics?.[0]?.pods?.target.averageValue);
    expect([scaled.spec.minReplicaCount, scaled.spec.maxReplicaCount]).toEqual([hpa.spec?.minReplicas, hpa.spec?.maxReplicas]);
    expect(scaled.spec.advanced?.horizontalPodAutoscalerConfig?.behavior).toEqual(hpa.spec?.behavior);
  });
});

describe('the Helm chart', () => {
  const defaults = chart();
  const full = chart({ values: { autoscaling: { keda: { enabled: true } }, serviceMonitor: { enabled: true } } });
  const hpa = chart({ values: { autoscaling: { hpa: { enabled: true } } } });

  test('renders the same objects as deploy/kubernetes with its defaults and a release named kiln', () => {
    const kinds = (manifests: Manifest[]) => manifests.map((m) => `${String(m.object.kind)}/${String(metadataOf(m.object).name)}`);
    const plainKinds = kinds(plain.filter((m) => !m.file.includes('.example.')));
    expect(kinds(defaults).sort()).toEqual(plainKinds.filter((k) => !/ScaledObject|HorizontalPod|ServiceMonitor/.test(k)).sort());
    expect(
      kinds([...full, ...hpa])
        .filter((k) => /ScaledObject|HorizontalPod|ServiceMonitor/.test(k))
        .sort(),
    ).toEqual(plainKinds.filter((k) => /ScaledObject|HorizontalPod|ServiceMonitor/.test(k)).sort());

    const pair = <T>(is: (v: unknown) => v is T, from: Manifest[] = defaults): [T, T] => [one(from, is), one(plain, is)];
    const [deployment, plainDeployment] = pair(Deployment.is);
    expect(deployment.spec?.template.spec).toEqual(plainDeployment.spec?.template.spec);
    expect(deployment.spec?.template.metadata?.labels).toEqual(plainDeployment.spec?.template.metadata?.labels);
    const { template: _t, ...rest } = deployment.spec!;
    const { template: _p, ...plainRest } = plainDeployment.spec!;
    expect(rest).toEqual(plainRest);
    const [service, plainService] = pair(Service.is);
    expect(service.spec).toEqual(plainService.spec);
    const [pdb, plainPdb] = pair(PodDisruptionBudget.is);
    expect(pdb.spec).toEqual(plainPdb.spec);
    const [configMap, plainConfigMap]: [IConfigMap, IConfigMap] = pair(ConfigMap.is);
    expect(parse(configMap.data!['kiln.yaml']!)).toEqual(parse(plainConfigMap.data!['kiln.yaml']!));
    const [monitor, plainMonitor] = pair(ServiceMonitor.is, full);
    expect(monitor.spec).toEqual(plainMonitor.spec);
    const [autoscaler, plainAutoscaler]: [IHorizontalPodAutoscaler, IHorizontalPodAutoscaler] = pair(HorizontalPodAutoscaler.is, hpa);
    expect(autoscaler.spec).toEqual(plainAutoscaler.spec);
    // The chart's query names its namespace, which the namespace-free manifests cannot.
    const [scaled, plainScaled]: [IScaledObject, IScaledObject] = pair(ScaledObject.is, full);
    const query = (s: IScaledObject) => s.spec.triggers[0]!.metadata.query;
    expect(query(scaled)).toBe(query(plainScaled)!.replace('{', '{namespace="default",'));
    const withoutQuery = (s: IScaledObject) => ({
      ...s.spec,
      triggers: s.spec.triggers.map((t) => ({ ...t, metadata: { ...t.metadata, query: '' } })),
    });
    expect(withoutQuery(scaled)).toEqual(withoutQuery(plainScaled));
  });

  test("every object carries Helm's labels, and the NOTES render with every values set", () => {
    for (const { object } of defaults) {
      expect(metadataOf(object).labels).toMatchObject({
        'helm.sh/chart': 'kiln-0.1.0',
        'app.kubernetes.io/managed-by': 'Helm',
        'app.kubernetes.io/version': '0.1.0',
      });
    }
    for (const values of [{}, ...Object.values(VALUE_SETS)]) {
      const { notes } = renderChart(CHART, { releaseName: 'kiln', namespace: 'ml', values });
      expect(notes).toContain('kubectl -n ml port-forward svc/kiln 8080:8080');
    }
  });

  test('the grace period follows drainTimeout, unless given', () => {
    const grace = (values: Record<string, unknown>) =>
      one(chart({ values }), Deployment.is).spec?.template.spec?.terminationGracePeriodSeconds;
    expect(grace({})).toBe(5 + 30 + 120 + 5 + 10);
    expect(grace({ config: { drainTimeout: 60 }, modelResponseTimeoutSeconds: 30 })).toBe(5 + 60 + 30 + 5 + 10);
    expect(grace({ terminationGracePeriodSeconds: 90 })).toBe(90);
    expect(() => chart({ values: { config: { drainTimeout: null } } })).toThrow(/config\.drainTimeout must be set/);
  });

  test('names follow the release, and the token Secret is the one given, created, or <fullname>-token', () => {
    const objects = chart({ releaseName: 'prod', values: { token: { existingSecret: 'vault-token', key: 'value' } } });
    const deployment = one(objects, Deployment.is);
    expect(objects.map((m) => String(metadataOf(m.object).name)).sort()).toEqual([
      'prod-kiln',
      'prod-kiln',
      'prod-kiln',
      'prod-kiln-config',
    ]);
    const volumes = deployment.spec!.template.spec!.volumes!;
    expect(volumes.find((v) => v.name === 'config')?.configMap?.name).toBe('prod-kiln-config');
    expect(volumes.find((v) => v.name === 'token')?.secret).toMatchObject({
      secretName: 'vault-token',
      items: [{ key: 'value', path: 'kiln-token' }],
    });
    expect(all(objects, Secret.is)).toEqual([]);

    const token = 'y'.repeat(40);
    const created = one(chart({ values: { token: { create: true, value: token } } }), Secret.is);
    expect(created.metadata?.name).toBe('kiln-token');
    expect(Buffer.from(created.data!.token!, 'base64').toString()).toBe(token);
    expect(() => chart({ values: { token: { create: true } } })).toThrow(/token\.value is required with token\.create/);
    expect(() => chart({ values: { token: { create: true, value: token, existingSecret: 'x' } } })).toThrow(/exclude each other/);
    expect(one(chart({ releaseName: 'kiln-eu' }), Deployment.is).metadata?.name).toBe('kiln-eu');
  });

  test('KEDA and an HPA together are refused; either leaves the replica count to itself', () => {
    expect(() => chart({ values: { autoscaling: { keda: { enabled: true }, hpa: { enabled: true } } } })).toThrow(/exclude each other/);
    expect(one(defaults, Deployment.is).spec?.replicas).toBe(2);
    expect(one(full, Deployment.is).spec).not.toHaveProperty('replicas');
    expect(one(hpa, Deployment.is).spec).not.toHaveProperty('replicas');
  });

  test("README.md's table documents every value", () => {
    const readme = readFileSync(join(CHART, 'README.md'), 'utf8');
    const missing: string[] = [];
    const walk = (value: unknown, path: string): void => {
      if (readme.includes(`| \`${path}\``) || readme.includes(`, \`${path}\``)) return;
      if (typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).length > 0) {
        for (const [key, inner] of Object.entries(value)) walk(inner, `${path}.${key}`);
      } else missing.push(path);
    };
    const values: unknown = parse(readFileSync(join(CHART, 'values.yaml'), 'utf8'));
    for (const [key, value] of Object.entries(typeof values === 'object' && values !== null ? values : {})) walk(value, key);
    expect(missing).toEqual([]);
  });

  test('a config change rolls the pods: the pod template carries its checksum', () => {
    const checksum = (values: Record<string, unknown>) =>
      one(chart({ values }), Deployment.is).spec?.template.metadata?.annotations?.['checksum/config'];
    expect(checksum({})).toMatch(/^[0-9a-f]{64}$/);
    expect(checksum({ config: { jobQueueSize: 50 } })).not.toBe(checksum({}));
  });
});
