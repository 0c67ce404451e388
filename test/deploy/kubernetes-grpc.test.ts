import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SERVER_OPTIONS, resolveServerConfig } from '@kiln/server';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Service } from 'kubernetes-models/v1/Service';
import { describe, expect, test } from 'vitest';
import { tempDir } from '../support/kiln.js';
import { renderChart } from '../support/helm-render.js';
import { invocation } from './entrypoint.js';
import { ROOT, kilnContainer, one, readManifests, type Manifest } from './schemas.js';

// Kiln's gRPC APIs on Kubernetes (deploy/kubernetes and the Helm chart): KServe v2 gRPC and TorchServe's gRPC
// inference and management APIs, each a named container port, a Service port with appProtocol grpc, and an
// address in kiln.yaml that the image's entrypoint leaves as it is. kubernetes.test.ts checks the rest.

const CHART = join(ROOT, 'deploy/helm/kiln');
const chart = (values: Record<string, unknown> = {}) => renderChart(CHART, { releaseName: 'kiln', namespace: 'default', values });
const chartObjects = (values: Record<string, unknown> = {}): Manifest[] =>
  chart(values).objects.map(({ template, object }) => ({ file: `deploy/helm/kiln/${template}`, object }));

/** Each gRPC API: its port's name and number, and the server option that says where Kiln listens for it. */
const GRPC = [
  { name: 'grpc', port: 8085, option: 'grpcAddress' },
  { name: 'ts-grpc', port: 7070, option: 'tsGrpcInferenceAddress' },
  { name: 'ts-grpc-mgmt', port: 7071, option: 'tsGrpcManagementAddress' },
] as const;

/** An IANA service name, as Kubernetes wants a port's name: 1 to 15 of a-z, 0-9 and '-', with a letter, no '-' at an end or twice. */
const IANA_SERVICE_NAME = /^(?=.{1,15}$)(?=[a-z0-9-]*[a-z])[a-z0-9]+(-[a-z0-9]+)*$/;

const servicePorts = (manifests: Manifest[]) => one(manifests, Service.is).spec?.ports ?? [];

describe.each([
  ['deploy/kubernetes', readManifests('deploy/kubernetes')],
  ['the chart with its defaults', chartObjects()],
])('%s', (_, manifests) => {
  test('the container has a port for each gRPC API, and the Service sends to it by name, with appProtocol grpc', () => {
    const ports = kilnContainer(one(manifests, Deployment.is)).ports ?? [];
    for (const { name, port } of GRPC) {
      expect(name).toMatch(IANA_SERVICE_NAME);
      expect(ports).toContainEqual({ name, containerPort: port, protocol: 'TCP' });
    }
    const grpc = servicePorts(manifests).filter((p) => p.appProtocol !== undefined);
    expect(grpc).toEqual(GRPC.map(({ name, port }) => ({ name, port, targetPort: name, protocol: 'TCP', appProtocol: 'grpc' })));
    // The HTTP ports keep Kubernetes' default (HTTP/1.1): no appProtocol.
    expect(servicePorts(manifests).map((p) => p.name)).toEqual(['inference', 'management', 'metrics', ...GRPC.map((g) => g.name)]);
  });

  test("Kiln listens for each gRPC API on the pod's addresses, at its container port, after the image's entrypoint", () => {
    const deployment = one(manifests, Deployment.is);
    const container = kilnContainer(deployment);
    const configMap = one(manifests, ConfigMap.is);
    const env = Object.fromEntries((container.env ?? []).map((e) => [e.name, e.value ?? '']));
    // The pod, on this machine: kiln.yaml from the ConfigMap, a token file, the state and models folders.
    const dir = tempDir('kiln-grpc-pod-');
    mkdirSync(join(dir, 'models'));
    writeFileSync(join(dir, 'kiln.yaml'), configMap.data!['kiln.yaml']!);
    writeFileSync(join(dir, 'token'), 'a-token-of-32-characters-or-so-x\n');
    const paths = {
      KILN_CONFIG: join(dir, 'kiln.yaml'),
      KILN_TOKEN_FILE: join(dir, 'token'),
      KILN_STATE_DIR: join(dir, 'state'),
      KILN_MODELS_DIR: join(dir, 'models'),
      KILN_SECRET_FILE: join(dir, 'no-secret'),
    };
    expect(env.KILN_CONFIG).toBe('/etc/kiln/kiln.yaml');
    // What entrypoint.sh exports: a config file that sets the inference address would have it turn KServe v2
    // gRPC off and leave TorchServe's on loopback, unless kiln.yaml says where they listen.
    const run = invocation([], { ...env, ...paths });
    const known = new Set<string>([...Object.values(SERVER_OPTIONS).map((o) => o.env), 'KILN_CONFIG']);
    const serverEnv = Object.fromEntries(Object.entries(run.env).filter(([name]) => known.has(name)));
    const config = resolveServerConfig({ env: serverEnv, cwd: dir });
    for (const { option, port } of GRPC) expect(config[option], option).toBe(`0.0.0.0:${port}`);
  });
});

describe('the Helm chart', () => {
  test('service.grpc.enabled=false leaves the gRPC ports off the Service, not off the container', () => {
    const objects = chartObjects({ service: { grpc: { enabled: false } } });
    expect(servicePorts(objects).map((p) => p.name)).toEqual(['inference', 'management', 'metrics']);
    const ports = kilnContainer(one(objects, Deployment.is)).ports ?? [];
    for (const { name } of GRPC) expect(ports.map((p) => p.name)).toContain(name);
    expect(chart({ service: { grpc: { enabled: false } } }).notes).not.toContain('gRPC');
  });

  test("the Service's gRPC port numbers come from values, each still sent to the container's port of its name", () => {
    const values = { service: { grpc: { port: 9000, tsInferencePort: 9070, tsManagementPort: 9071 } } };
    const grpc = servicePorts(chartObjects(values)).filter((p) => p.appProtocol === 'grpc');
    expect(grpc.map((p) => [p.name, p.port, p.targetPort])).toEqual([
      ['grpc', 9000, 'grpc'],
      ['ts-grpc', 9070, 'ts-grpc'],
      ['ts-grpc-mgmt', 9071, 'ts-grpc-mgmt'],
    ]);
    expect(chart(values).notes).toMatch(/KServe v2 on port 9000 and TorchServe's inference API on 9070,[\s\S]*management API on 9071/);
    expect(chart().notes).toMatch(/KServe v2 on port 8085 and TorchServe's inference API on 7070,[\s\S]*management API on 7071/);
  });
});
