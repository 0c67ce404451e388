import { gpuUsage } from '../observability/gpu-usage.js';
import { residentBytes } from '../pool/resident-memory.js';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { checkModelName } from '@kiln/handler-sdk/runtime';
import { serverError } from '../errors.js';
import type { ModelVersion } from '../registry/model-version.js';
import type { ModelService } from '../registry/model-service.js';
import { methodNotAllowed } from './create-app.js';
import { customizedMetadata } from './customized-metadata.js';

const integer = (minimum: number, description: string) => ({ type: 'integer', minimum, description }) as const;
/** The most workers one version runs: as for --workers and a model-config's minWorkers. */
export const MAX_WORKERS = 256;
const workerCount = (minimum: 0 | 1, description: string) => ({ ...integer(minimum, description), maximum: MAX_WORKERS }) as const;
const modelParams = { type: 'object', properties: { model_name: { type: 'string' } }, required: ['model_name'] } as const;
const versionParams = {
  type: 'object',
  properties: { model_name: { type: 'string' }, version: { type: 'string' } },
  required: ['model_name', 'version'],
} as const;
const registerFields = {
  url: { type: 'string', minLength: 1, description: 'Archive file name in the model store, or a URL matching allowedUrls' },
  model_name: { type: 'string', minLength: 1, description: "Name to serve the model under (default: the manifest's)" },
  batch_size: integer(1, 'Overrides the archive’s batchSize'),
  max_batch_delay: integer(0, 'Overrides maxBatchDelay (ms)'),
  initial_workers: workerCount(0, 'Workers to start (default: --workers); 0: one starts on the first request'),
  synchronous: { type: 'boolean', default: true, description: 'Answer once the workers are ready (200) rather than at once (202)' },
  response_timeout: integer(1, 'Overrides responseTimeout (s)'),
  startup_timeout: integer(1, 'Overrides startupTimeout (s)'),
  runtime: { type: 'string', enum: ['node'], description: "The archive's runtime: Kiln's archives run on Node (TorchServe's say python)" },
  handler: { type: 'string', description: 'Refused: the handler is part of the archive (kiln archive --handler)' },
} as const;

/** TorchServe's management API: list, describe, register, scale, unregister, set the default version. */
export function managementApi(app: FastifyInstance, service: ModelService): void {
  const { registry } = service;

  app.get<{ Querystring: { limit: number; next_page_token?: number } }>(
    '/models',
    {
      schema: {
        summary: 'List registered models, sorted by name, a page at a time',
        querystring: {
          type: 'object',
          properties: {
            limit: { ...integer(1, 'Models per page (at most 100)'), maximum: 100, default: 100 },
            next_page_token: integer(0, 'Where the next page starts'),
          },
        },
      },
    },
    async (request) => listModels(service, request.query.limit, request.query.next_page_token ?? 0),
  );

  const describeSummary = 'Describe a model: its versions, workers, batch settings and queue';
  const describeQuery = {
    type: 'object',
    properties: {
      customized: {
        type: 'boolean',
        default: false,
        description: "Add customizedMetadata: what the handler's describe() returns, from one live worker",
      },
    },
    additionalProperties: false,
  } as const;
  type DescribeQuery = { customized: boolean };
  app.get<{ Params: { model_name: string; version?: string }; Querystring: DescribeQuery }>(
    '/models/:model_name',
    { schema: { summary: describeSummary, params: modelParams, querystring: describeQuery } },
    async (request) => describeModel(service, request.params.model_name, undefined, request.query.customized, request.id),
  );
  app.get<{ Params: { model_name: string; version: string }; Querystring: DescribeQuery }>(
    '/models/:model_name/:version',
    { schema: { summary: `${describeSummary} (version "all": every version)`, params: versionParams, querystring: describeQuery } },
    async (request) => describeModel(service, request.params.model_name, request.params.version, request.query.customized, request.id),
  );

  const requireModelApi = () => requireModelApiOf(service, 'HTTP');

  app.post<{ Querystring: Record<string, unknown>; Body: Record<string, unknown> | undefined }>(
    '/models',
    {
      schema: {
        summary: 'Register a model from an archive (needs --enable-model-api)',
        // An unknown parameter is refused, never ignored: a typo must not register with defaults.
        querystring: { type: 'object', properties: registerFields, additionalProperties: false },
        body: { type: 'object', nullable: true, properties: registerFields, additionalProperties: false },
      },
    },
    async (request, reply) => {
      requireModelApi();
      const p = { ...(request.body ?? {}), ...stripDefaults(request.query, request.url) } as RegisterParams;
      const answer = await registerModel(service, p);
      return reply.code(answer.code).send(answer.body);
    },
  );

  const scaleRoute = {
    schema: {
      summary: 'Scale a model version to min_worker workers',
      params: modelParams,
      querystring: {
        type: 'object',
        properties: {
          min_worker: { ...workerCount(0, 'Workers to keep running; 0: one starts on the first request, and stops when idle'), default: 1 },
          max_worker: workerCount(1, 'Workers the model may scale up to under load (default: min_worker, at least 1)'),
          synchronous: { type: 'boolean', default: false, description: 'Answer once scaled (200) rather than at once (202)' },
          timeout: {
            type: 'integer',
            minimum: -1,
            description: 'With synchronous: seconds to wait before answering 206 while scaling goes on (-1: no limit)',
          },
        },
        additionalProperties: false,
      },
    },
  };
  type ScaleRequest = {
    Params: { model_name: string; version?: string };
    Querystring: { min_worker: number; max_worker?: number; synchronous: boolean; timeout?: number };
  };
  const scale = async (request: FastifyRequest<ScaleRequest>, reply: FastifyReply) => {
    const model = registry.resolve(request.params.model_name, request.params.version);
    const { min_worker: min, max_worker: max = Math.max(1, min), synchronous, timeout = -1 } = request.query;
    const answer = await scaleModel(service, model, min, max, synchronous, timeout);
    return reply.code(answer.code).send(answer.body);
  };
  app.put<ScaleRequest>('/models/:model_name', scaleRoute, scale);
  app.put<ScaleRequest>('/models/:model_name/:version', { schema: { ...scaleRoute.schema, params: versionParams } }, scale);

  type UnregisterRequest = { Params: { model_name: string; version?: string } };
  const unregister = async (request: FastifyRequest<UnregisterRequest>) => {
    requireModelApi();
    return (await unregisterModel(service, request.params.model_name, request.params.version)).body;
  };
  const deleteRoute = {
    schema: {
      summary: 'Unregister a model version: drain its queue, then stop its workers (needs --enable-model-api)',
      params: modelParams,
    },
  };
  app.delete<UnregisterRequest>('/models/:model_name', deleteRoute, unregister);
  app.delete<UnregisterRequest>('/models/:model_name/:version', { schema: { ...deleteRoute.schema, params: versionParams } }, unregister);

  app.put<{ Params: { model_name: string; version: string } }>(
    '/models/:model_name/:version/set-default',
    {
      schema: { summary: 'Make a version the default one', params: versionParams },
    },
    async (request) => (await setDefaultVersion(service, request.params.model_name, request.params.version)).body,
  );
  methodNotAllowed(app, '/models/:model_name/:version/set-default', ['PUT']);
}

/*
 * What each management route does, as plain functions of its parameters: the HTTP routes above and
 * TorchServe's gRPC management API (grpc/torchserve-grpc.ts) both call them, so the two never
 * disagree. Each answers the status and body the HTTP route sends; gRPC answers the body as JSON.
 */

/** A management call's answer: the HTTP status and the body. */
export interface ManagementAnswer {
  code: number;
  body: unknown;
}

/** Refuses registering and unregistering without --enable-model-api; `over` names the API asked. */
export function requireModelApiOf(service: ModelService, over: 'HTTP' | 'gRPC'): void {
  if (!service.config.enableModelApi)
    throw serverError(
      'KILN_ERR_MODEL_API_DISABLED',
      `registering and unregistering models over ${over} is off; start kiln serve with --enable-model-api to allow it`,
    );
}

/** The registered models, sorted by name, `limit` from `start` on. */
export function listModels(service: ModelService, limit: number, start: number) {
  const { registry } = service;
  const names = registry.names();
  const page = names.slice(start, start + limit);
  const next = start + page.length;
  return {
    ...(next < names.length ? { nextPageToken: String(next) } : {}),
    models: page.map((name) => ({ modelName: name, modelUrl: registry.resolve(name).archive })),
  };
}

/** The default version's description, one version's, or with `all` every version's. */
export async function describeModel(
  service: ModelService,
  name: string,
  version: string | undefined,
  customized: boolean,
  requestId: string,
): Promise<unknown[]> {
  const { registry } = service;
  if (version === 'all') {
    registry.resolve(name);
    return Promise.all(registry.versions(name).map((model) => describe(model, service, customized, requestId)));
  }
  return [await describe(registry.resolve(name, version), service, customized, requestId)];
}

/** Register's parameters, as POST /models names them. */
export interface RegisterParams {
  url?: string;
  model_name?: string;
  batch_size?: number;
  max_batch_delay?: number;
  initial_workers?: number;
  synchronous?: boolean;
  response_timeout?: number;
  startup_timeout?: number;
  handler?: string;
}

/** Registers an archive (the caller checked --enable-model-api) and saves the snapshot. */
export async function registerModel(service: ModelService, p: RegisterParams): Promise<ManagementAnswer> {
  if (p.handler !== undefined) {
    throw serverError(
      'KILN_ERR_INVALID_PARAMETER',
      `Parameter handler cannot be given on register: a Kiln archive carries its handler, bundled when it was made (kiln archive --handler ${p.handler}); archive the model with the handler you want`,
    );
  }
  if (p.url === undefined)
    throw serverError('KILN_ERR_INVALID_PARAMETER', 'Parameter url is required: the archive file name in the model store');
  if (p.model_name !== undefined) checkModelName(p.model_name, 'model_name');
  const path = await service.resolveUrl(p.url);
  const synchronous = p.synchronous ?? true;
  const overrides = {
    ...(p.batch_size === undefined ? {} : { batchSize: p.batch_size }),
    ...(p.max_batch_delay === undefined ? {} : { maxBatchDelayMs: p.max_batch_delay }),
    ...(p.initial_workers === undefined ? {} : { minWorkers: p.initial_workers }),
    ...(p.response_timeout === undefined ? {} : { responseTimeoutS: p.response_timeout }),
    ...(p.startup_timeout === undefined ? {} : { startupTimeoutS: p.startup_timeout }),
  };
  const model = await service.register(path, p.model_name, overrides, synchronous);
  service.registeredFromApi(model, p.url, overrides);
  await service.saveSnapshot();
  if (!synchronous) return { code: 202, body: { status: 'Processing worker updates...' } };
  if (model.state.kind === 'draining' || model.state.kind === 'stopped') {
    // An unregister (or the server stopping) won the race: this request lost to another, not to a fault.
    throw serverError(
      'KILN_ERR_MODEL_CONFLICT',
      `model "${model.name}" version ${model.version} was unregistered while its workers started; register it again if you still want it`,
    );
  }
  if (model.state.kind !== 'ready') {
    const reason = model.reason;
    await service.unregister(model);
    await service.saveSnapshot();
    throw serverError(
      'KILN_ERR_SCALE_FAILED',
      `model "${model.name}" version ${model.version} could not start: ${reason}; it was not registered`,
    );
  }
  return {
    code: 200,
    body: { status: `Model "${model.name}" Version: ${model.version} registered with ${model.readyWorkers} initial workers` },
  };
}

/**
 * Scales a version to min..max workers and saves the snapshot; with `synchronous`, answers once
 * scaled, or 206 past `timeout` seconds (-1: no limit) while the scaling goes on.
 */
export async function scaleModel(
  service: ModelService,
  model: ModelVersion,
  min: number,
  max: number,
  synchronous: boolean,
  timeout: number,
): Promise<ManagementAnswer> {
  if (max < min)
    throw serverError('KILN_ERR_INVALID_PARAMETER', `max_worker cannot be less than min_worker (max_worker ${max}, min_worker ${min}).`);
  const scaling = service.scale(model, min, max);
  // The new bounds are set already (the workers follow): the snapshot records them now. Until
  // the race below, a failure of the scaling must not count as unhandled.
  scaling.catch(() => {});
  await service.saveSnapshot();
  if (!synchronous) {
    void scaling;
    return { code: 202, body: { status: 'Processing worker updates...' } };
  }
  // TorchServe's `timeout`: past it, the answer is 206 and the scaling carries on.
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => {
    if (timeout >= 0) timer = setTimeout(() => resolve('late'), timeout * 1000);
  });
  const outcome = await Promise.race([scaling, late]);
  clearTimeout(timer);
  if (outcome === 'late') return { code: 206, body: { status: 'Workers scaling in progress...' } };
  return { code: 200, body: { status: `Workers scaled to ${model.readyWorkers} for model: ${model.name}, version: ${model.version}` } };
}

/** Unregisters a version (the caller checked --enable-model-api), never the default of several, and saves the snapshot. */
export async function unregisterModel(service: ModelService, name: string, version: string | undefined): Promise<ManagementAnswer> {
  const { registry } = service;
  const model = registry.resolve(name, version);
  if (model.version === registry.defaultVersion(name) && registry.versions(name).length > 1) {
    throw serverError(
      'KILN_ERR_DEFAULT_VERSION_IN_USE',
      `version ${model.version} is the default of model "${name}"; set another default first (PUT /models/${name}/{version}/set-default)`,
    );
  }
  await service.unregister(model);
  await service.saveSnapshot();
  return { code: 200, body: { status: `Model "${name}" unregistered` } };
}

/** Makes a version its model's default and saves the snapshot. */
export async function setDefaultVersion(service: ModelService, name: string, version: string): Promise<ManagementAnswer> {
  service.registry.setDefault(name, version);
  await service.saveSnapshot();
  return { code: 200, body: { status: `Default version successfully updated for model "${name}" to "${version}"` } };
}

/** Query defaults (synchronous) apply only when a field is absent from both query and body. */
function stripDefaults(query: Record<string, unknown>, url: string): Record<string, unknown> {
  const given = new URLSearchParams(url.split('?')[1] ?? '');
  return Object.fromEntries(Object.entries(query).filter(([key]) => given.has(key)));
}

/**
 * A version's description, and whether it is its model's default; with `customized`, its handler's
 * describe() as `customizedMetadata` (left out when it has none: customized-metadata.ts).
 */
async function describe(model: ModelVersion, service: ModelService, customized: boolean, requestId: string) {
  const metadata = customized ? await customizedMetadata(model, requestId) : undefined;
  const gpus = model.onGpu ? await gpuUsage.usage() : [];
  const { modelName, modelVersion, modelUrl, engine, runtime, status, ...rest } = model.describe(residentBytes, gpus);
  return {
    modelName,
    modelVersion,
    modelUrl,
    engine,
    runtime,
    status,
    isDefault: service.registry.defaultVersion(model.name) === model.version,
    ...rest,
    ...(metadata === undefined ? {} : { customizedMetadata: metadata }),
  };
}
