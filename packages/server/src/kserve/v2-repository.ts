import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { checkModelName } from '@kiln/handler-sdk/runtime';
import { kserveScope } from '../http/create-app.js';
import { serverError } from '../errors.js';
import type { ConfigOverrides } from '../registry/load-version.js';
import type { ModelService } from '../registry/model-service.js';

/** What a repository archive's file name may end with; the rest of the name is the model's. */
const ARCHIVE_ENDINGS = ['.mar', '.tar.gz', '.tgz'] as const;

type RepositoryParams = { Params: { model: string } };
type RepositoryBody = { parameters?: Record<string, unknown> } | undefined;

/**
 * Triton's model repository extension over the model store: the index of its archives and of the
 * models loaded, and load and unload by name. Changing what is loaded needs --enable-model-api, as
 * registering over the management API does; so does reading the index, which names the store's files.
 */
export function v2RepositoryApi(app: FastifyInstance, service: ModelService, maxRequestSizeBytes: number): void {
  kserveScope(app, { maxRequestSizeBytes }, (scope) => {
    scope.removeAllContentTypeParsers();
    // Triton's clients send a JSON body, an empty one, or none at all.
    scope.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => {
      const text = String(body).trim();
      if (text === '') return done(null, undefined);
      try {
        const parsed: unknown = JSON.parse(text);
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('the body is not a JSON object');
        done(null, parsed);
      } catch (error) {
        done(serverError('KILN_ERR_INVALID_PARAMETER', `the body must be a JSON object or empty: ${(error as Error).message}`));
      }
    });
    scope.addHook('onRequest', async () => requireModelApi(service));

    scope.post<{ Body: { ready?: unknown } | undefined }>('/v2/repository/index', async (request) => {
      const readyOnly = request.body?.ready === true;
      return repositoryIndex(service).filter((entry) => !readyOnly || entry.state === 'READY');
    });

    scope.post<RepositoryParams & { Body: RepositoryBody }>('/v2/repository/models/:model/load', async (request, reply) => {
      const { model: name } = request.params;
      checkModelName(name, 'the model name');
      const overrides = loadOverrides(name, request.body?.parameters ?? {});
      if (service.registry.versions(name).length > 0) return reply.code(200).send(); // loaded already: see docs/reference/kserve-v2.md
      const file = archiveOf(service, name);
      const model = await service.register(join(service.config.modelStore!, file), name, overrides, true);
      if (model.state.kind !== 'ready') {
        const reason = model.reason;
        await service.unregister(model);
        await service.saveSnapshot();
        throw serverError('KILN_ERR_SCALE_FAILED', `failed to load '${name}': ${reason}; it was not loaded`);
      }
      service.registeredFromApi(model, file, overrides);
      await service.saveSnapshot();
      return reply.code(200).send();
    });

    scope.post<RepositoryParams & { Body: RepositoryBody }>('/v2/repository/models/:model/unload', async (request, reply) => {
      const { model: name } = request.params;
      const unknown = Object.keys(request.body?.parameters ?? {}).filter((key) => key !== 'unload_dependents');
      if (unknown.length > 0) {
        throw serverError(
          'KILN_ERR_INVALID_PARAMETER',
          `unload takes no parameter ${unknown.join(', ')}; it takes unload_dependents (ignored: Kiln models have no dependents)`,
        );
      }
      const versions = service.registry.versions(name);
      if (versions.length === 0) {
        throw serverError(
          'KILN_ERR_MODEL_NOT_FOUND',
          `Request for unknown model: '${name}' is not loaded; loaded models: ${service.registry.names().join(', ') || 'none'}`,
        );
      }
      await Promise.all(versions.map((version) => service.unregister(version)));
      await service.saveSnapshot();
      return reply.code(200).send();
    });
  });
}

function requireModelApi(service: ModelService): void {
  if (!service.config.enableModelApi) {
    throw serverError(
      'KILN_ERR_MODEL_API_DISABLED',
      "Triton's model repository routes (index, load, unload) are off; start kiln serve with --enable-model-api to allow them",
    );
  }
}

interface IndexEntry {
  name: string;
  version: string;
  state: 'READY' | 'LOADING' | 'UNAVAILABLE';
  reason: string;
}

/** Every archive of the model store, and every model loaded, as Triton's RepositoryIndex lists them. */
export function repositoryIndex(service: ModelService): IndexEntry[] {
  const entries: IndexEntry[] = service.registry.all().map((v) => ({
    name: v.name,
    version: v.version,
    state: v.state.kind === 'ready' ? 'READY' : v.state.kind === 'loading' ? 'LOADING' : 'UNAVAILABLE',
    reason: v.state.kind === 'ready' ? '' : v.reason,
  }));
  for (const name of storeModels(service.config.modelStore)) {
    if (service.registry.versions(name).length === 0) entries.push({ name, version: '', state: 'UNAVAILABLE', reason: 'unloaded' });
  }
  return entries.sort((a, b) => a.name.localeCompare(b.name) || a.version.localeCompare(b.version));
}

/** The model names the store's archives give: their file names less the ending. */
function storeModels(store: string | undefined): string[] {
  if (store === undefined || !existsSync(store)) return [];
  const names: string[] = [];
  for (const file of readdirSync(store)) {
    const ending = ARCHIVE_ENDINGS.find((e) => file.endsWith(e));
    if (ending !== undefined) names.push(file.slice(0, -ending.length));
    else if (existsSync(join(store, file, 'MAR-INF', 'MANIFEST.json')) && statSync(join(store, file)).isDirectory()) names.push(file);
  }
  return [...new Set(names)];
}

/** The store's archive for a model name: name.mar, name.tar.gz, name.tgz, or an unpacked folder. */
function archiveOf(service: ModelService, name: string): string {
  const store = service.config.modelStore;
  if (store === undefined) {
    throw serverError('KILN_ERR_MODEL_NOT_FOUND', `failed to load '${name}': the server has no --model-store to load it from`);
  }
  const candidates = [...ARCHIVE_ENDINGS.map((e) => `${name}${e}`), name];
  const found = candidates.find(
    (file) => existsSync(join(store, file)) && (file !== name || existsSync(join(store, file, 'MAR-INF', 'MANIFEST.json'))),
  );
  if (found === undefined) {
    throw serverError(
      'KILN_ERR_MODEL_NOT_FOUND',
      `failed to load '${name}': no ${candidates.slice(0, -1).join(', ')} or unpacked folder ${name} in the model store ${store}`,
    );
  }
  return found;
}

/**
 * Load's parameters: Triton's `config`, a JSON model configuration, of which Kiln takes
 * max_batch_size, dynamic_batching.max_queue_delay_microseconds and the instance_group counts.
 * Anything else is refused by name: a load must not quietly differ from what was asked.
 */
function loadOverrides(name: string, parameters: Record<string, unknown>): ConfigOverrides {
  const others = Object.keys(parameters).filter((key) => key !== 'config');
  if (others.length > 0) {
    const files = others.filter((key) => key.startsWith('file:'));
    throw serverError(
      'KILN_ERR_INVALID_PARAMETER',
      files.length > 0
        ? `load parameter ${files[0]} uploads a model file, which Kiln does not take: put the archive (kiln archive) in the model store and load it by name`
        : `load takes no parameter ${others.join(', ')}; it takes config`,
    );
  }
  if (parameters.config === undefined) return {};
  let config: Record<string, unknown>;
  try {
    config =
      typeof parameters.config === 'string'
        ? (JSON.parse(parameters.config) as Record<string, unknown>)
        : (parameters.config as Record<string, unknown>);
    if (typeof config !== 'object' || config === null || Array.isArray(config)) throw new Error('not a JSON object');
  } catch (error) {
    throw serverError(
      'KILN_ERR_INVALID_PARAMETER',
      `load parameter config must be a JSON object of Triton's model configuration: ${(error as Error).message}`,
    );
  }
  const taken = new Set(['name', 'platform', 'backend', 'max_batch_size', 'dynamic_batching', 'instance_group', 'input', 'output']);
  const refused = Object.keys(config).filter((key) => !taken.has(key));
  if (refused.length > 0) {
    throw serverError(
      'KILN_ERR_INVALID_PARAMETER',
      `config field ${refused.join(', ')} has no Kiln equivalent; Kiln takes max_batch_size, dynamic_batching.max_queue_delay_microseconds and instance_group[].count (set the rest in the archive's model-config.yaml)`,
    );
  }
  if (config.name !== undefined && config.name !== name) {
    throw serverError('KILN_ERR_INVALID_PARAMETER', `config name "${String(config.name)}" is not the model loaded, "${name}"`);
  }
  const overrides: ConfigOverrides = {};
  const count = (value: unknown, field: string, minimum: number): number => {
    if (!Number.isInteger(value) || (value as number) < minimum)
      throw serverError('KILN_ERR_INVALID_PARAMETER', `config ${field} must be an integer ≥ ${minimum}, received ${JSON.stringify(value)}`);
    return value as number;
  };
  if (config.max_batch_size !== undefined) overrides.batchSize = Math.max(1, count(config.max_batch_size, 'max_batch_size', 0));
  const batching = config.dynamic_batching as Record<string, unknown> | undefined;
  if (batching?.max_queue_delay_microseconds !== undefined) {
    overrides.maxBatchDelayMs = Math.round(
      count(batching.max_queue_delay_microseconds, 'dynamic_batching.max_queue_delay_microseconds', 0) / 1000,
    );
  }
  if (config.instance_group !== undefined) {
    if (!Array.isArray(config.instance_group)) throw serverError('KILN_ERR_INVALID_PARAMETER', 'config instance_group must be a list');
    overrides.minWorkers = config.instance_group.reduce(
      (sum: number, group: { count?: unknown }, i) => sum + count(group.count ?? 1, `instance_group[${i}].count`, 0),
      0,
    );
  }
  return overrides;
}
