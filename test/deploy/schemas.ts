import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { Deployment, type IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { IContainer } from 'kubernetes-models/v1/Container';
import { PersistentVolumeClaim } from 'kubernetes-models/v1/PersistentVolumeClaim';
import { Pod } from 'kubernetes-models/v1/Pod';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { SERVER_OPTIONS, resolveServerConfig } from '@kiln/server';
import ts from 'typescript';
import { expect } from 'vitest';
import { parseAllDocuments } from 'yaml';

/**
 * Offline checks of Kubernetes objects: kubernetes-models' JSON schemas (types, formats, required fields), and,
 * since those schemas let unknown fields through, TypeScript's excess property check against the same models'
 * interfaces, which catches a misspelt field at any depth.
 */

export interface Manifest {
  /** The file it came from, relative to the repository. */
  file: string;
  object: Record<string, unknown>;
}

export const ROOT = resolve(import.meta.dirname, '../..');

/** The KILN_* variables the server reads, and those its image's entrypoint reads. */
export const KNOWN_VARIABLES = new Set([
  ...Object.values(SERVER_OPTIONS).map((o) => o.env),
  'KILN_CONFIG',
  'KILN_TOKEN',
  ...[...readFileSync(join(ROOT, 'deploy/docker/entrypoint.sh'), 'utf8').matchAll(/\$\{?(KILN_[A-Z_]+)/g)].map((m) => m[1]!),
]);

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Every document of every YAML file in `dir`, read as Kubernetes reads YAML (1.1: `off` is a boolean). */
export function readManifests(dir: string): Manifest[] {
  return readdirSync(join(ROOT, dir))
    .filter((name) => /\.ya?ml$/.test(name) && name !== 'kustomization.yaml')
    .sort()
    .flatMap((name) => {
      const file = `${dir}/${name}`;
      return parseAllDocuments(readFileSync(join(ROOT, file), 'utf8'), { version: '1.1', uniqueKeys: true }).map((doc) => {
        if (doc.errors.length > 0 || doc.warnings.length > 0) throw new Error(`${file}: ${[...doc.errors, ...doc.warnings][0]!.message}`);
        const object: unknown = doc.toJS();
        if (!isRecord(object)) throw new Error(`${file}: a document is not a mapping`);
        return { file, object };
      });
    });
}

interface ModelClass<T> {
  is: (value: unknown) => value is T;
  new (data: T): { validate(): void };
}

function validateAs<T>(model: ModelClass<T>, object: unknown): boolean {
  if (!model.is(object)) return false;
  new model(object).validate();
  return true;
}

/** Where each kind's TypeScript interface lives, for the excess property check. */
const INTERFACES: Record<string, { module: string; name: string }> = {
  'v1/ConfigMap': { module: 'kubernetes-models/v1/ConfigMap', name: 'IConfigMap' },
  'v1/Secret': { module: 'kubernetes-models/v1/Secret', name: 'ISecret' },
  'v1/Service': { module: 'kubernetes-models/v1/Service', name: 'IService' },
  'v1/PersistentVolumeClaim': { module: 'kubernetes-models/v1/PersistentVolumeClaim', name: 'IPersistentVolumeClaim' },
  'v1/Pod': { module: 'kubernetes-models/v1/Pod', name: 'IPod' },
  'apps/v1/Deployment': { module: 'kubernetes-models/apps/v1/Deployment', name: 'IDeployment' },
  'policy/v1/PodDisruptionBudget': { module: 'kubernetes-models/policy/v1/PodDisruptionBudget', name: 'IPodDisruptionBudget' },
  'autoscaling/v2/HorizontalPodAutoscaler': {
    module: 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler',
    name: 'IHorizontalPodAutoscaler',
  },
  'keda.sh/v1alpha1/ScaledObject': { module: '@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject', name: 'IScaledObject' },
  'monitoring.coreos.com/v1/ServiceMonitor': {
    module: '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor',
    name: 'IServiceMonitor',
  },
};

/**
 * Validates an object against kubernetes-models' schema for its kind, throwing the schema's errors. A kind this
 * does not know is an error, so that no object goes unchecked.
 */
export function validateSchema(object: unknown): void {
  const validators = [
    (o: unknown) => validateAs(ConfigMap, o),
    (o: unknown) => validateAs(Secret, o),
    (o: unknown) => validateAs(Service, o),
    (o: unknown) => validateAs(PersistentVolumeClaim, o),
    (o: unknown) => validateAs(Pod, o),
    (o: unknown) => validateAs(Deployment, o),
    (o: unknown) => validateAs(PodDisruptionBudget, o),
    (o: unknown) => validateAs(HorizontalPodAutoscaler, o),
    (o: unknown) => validateAs(ScaledObject, o),
    (o: unknown) => validateAs(ServiceMonitor, o),
  ];
  if (validators.some((validate) => validate(object))) return;
  const kind = isRecord(object) ? `${String(object.apiVersion)}/${String(object.kind)}` : typeof object;
  throw new Error(`no schema for ${kind}`);
}

/**
 * TypeScript's verdict on each object as its kind's interface: the messages (an unknown field names itself),
 * empty when every object fits. `extra` checks values against other interfaces of the models, e.g. a KServe
 * runtime's containers as `IContainer` ({module: 'kubernetes-models/v1/Container', name: 'IContainer'}).
 */
export function typeCheck(entries: { label: string; value: unknown; type?: { module: string; name: string } }[]): string[] {
  let text = '';
  const labels: { line: number; label: string }[] = [];
  entries.forEach((entry, i) => {
    const object = entry.value;
    const type = entry.type ?? (isRecord(object) ? INTERFACES[`${String(object.apiVersion)}/${String(object.kind)}`] : undefined);
    if (type === undefined) throw new Error(`${entry.label}: no TypeScript interface known for it`);
    labels.push({ line: text.split('\n').length, label: entry.label });
    text += `import type { ${type.name} as T${i} } from '${type.module}';\nexport const v${i}: T${i} = ${JSON.stringify(object, null, 1)};\n`;
  });
  // A file beside this one that exists only in memory, so that package imports resolve from the repository.
  const file = join(import.meta.dirname, '__manifests__.ts');
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    lib: ['lib.es2022.d.ts'],
    types: [],
    skipLibCheck: true,
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  host.getSourceFile = (name, version, ...rest) =>
    name === file ? ts.createSourceFile(name, text, version) : getSourceFile(name, version, ...rest);
  host.fileExists = (name) => name === file || fileExists(name);
  const program = ts.createProgram([file], options, host);
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const line = d.file !== undefined && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line + 1 : 0;
    const label = labels.findLast((l) => l.line <= line)?.label ?? '?';
    return `${label}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`;
  });
}

/** The objects of one kind. */
export function all<T>(manifests: Manifest[], is: (v: unknown) => v is T): T[] {
  const found: T[] = [];
  for (const { object } of manifests) if (is(object)) found.push(object);
  return found;
}

export function one<T>(manifests: Manifest[], is: (v: unknown) => v is T): T {
  const found = all(manifests, is);
  expect(found).toHaveLength(1);
  return found[0]!;
}

export function kilnContainer(deployment: IDeployment): IContainer {
  const containers = deployment.spec?.template.spec?.containers ?? [];
  expect(containers.map((c) => c.name)).toEqual(['kiln']);
  return containers[0]!;
}

/** An object's metadata, before it is known to be any kind in particular. */
export function metadataOf(object: Record<string, unknown>): { name?: unknown; labels?: unknown } {
  const metadata = object.metadata;
  return typeof metadata === 'object' && metadata !== null ? metadata : {};
}

export const envOf = (container: IContainer) => Object.fromEntries((container.env ?? []).map((e) => [e.name, e.value]));

/** The metric families Kiln writes, with their types, read from their declarations. */
export function kilnMetricFamilies(): Map<string, string> {
  const source = readFileSync(join(ROOT, 'packages/server/src/observability/server-metrics.ts'), 'utf8');
  return new Map([...source.matchAll(/new (Counter|Gauge|Histogram)\(\{\s*name: '(\w+)'/g)].map((m) => [m[2]!, m[1]!]));
}

/** The server config the manifests' ConfigMap, variables and token file make, as Kiln resolves it. */
export function serverConfig(manifests: Manifest[]) {
  const deployment = one(manifests, Deployment.is);
  const container = kilnContainer(deployment);
  const env = envOf(container);
  const mount = container.volumeMounts!.find((m) => env.KILN_CONFIG!.startsWith(`${m.mountPath}/`))!;
  const volume = deployment.spec!.template.spec!.volumes!.find((v) => v.name === mount.name)!;
  const configMap = one(manifests, ConfigMap.is);
  expect(configMap.metadata?.name).toBe(volume.configMap?.name);
  const dir = mkdtempSync(join(tmpdir(), 'kiln-deploy-'));
  const file = join(dir, env.KILN_CONFIG!.slice(mount.mountPath.length + 1));
  writeFileSync(file, configMap.data![file.slice(dir.length + 1)]!);
  writeFileSync(join(dir, 'token'), 'a-token-of-32-characters-or-so-x\n');
  const variables: NodeJS.ProcessEnv = { ...env, KILN_CONFIG: file, KILN_STATE_DIR: join(dir, 'state') };
  if (env.KILN_TOKEN_FILE !== undefined) variables.KILN_TOKEN_FILE = join(dir, 'token');
  return resolveServerConfig({ env: variables, cwd: dir });
}
