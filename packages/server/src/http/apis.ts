import type { FastifyInstance } from 'fastify';
import multipart from '@fastify/multipart';
import { parseAddress, type ApiName, type ServerConfig } from '../config/server-config.js';
import { serverError } from '../errors.js';
import { v1Api } from '../kserve/v1-api.js';
import { v2Api } from '../kserve/v2-api.js';
import { v2RepositoryApi } from '../kserve/v2-repository.js';
import type { ModelService } from '../registry/model-service.js';
import type { ModelRegistry } from '../registry/registry.js';
import type { ServerLog } from '../observability/logs.js';
import { createApp, sendErrorFor } from './create-app.js';
import { explanationsApi } from './explanations-api.js';
import { inferenceApi, type InferenceDeps } from './inference-api.js';
import { managementApi } from './management-api.js';
import type { ServerMetrics } from '../observability/server-metrics.js';
import { metricsApi } from './metrics-api.js';
import type { AccessRecord } from '../observability/access-record.js';
import { observeRequests } from './observe-requests.js';
import { statusApi } from './status-api.js';
import { allowOrigins, HEALTH_ROUTES, isLoopback, requireToken } from './security.js';

export interface ApiDeps {
  config: ServerConfig;
  inference: InferenceDeps;
  service: ModelService;
  registry: ModelRegistry;
  metrics: ServerMetrics;
  /** Writes a request's access-log line; undefined when the access log is off. */
  accessLog?: ((record: AccessRecord) => void) | undefined;
  closing: () => boolean;
  /**
   * Awaited after the inference API listens and before the others are built: the models loading
   * at startup, capped (serve.ts). Building the management API keeps this thread busy for about
   * 150 ms, and a first request should not wait behind it.
   */
  inferenceFirst?: Promise<unknown>;
}

/**
 * Builds the inference, management and metrics APIs and binds each to its address. serve.ts imports
 * this module only after the models have started loading: fastify and its plugins take a while to
 * load, and the workers boot meanwhile. An address that cannot be bound closes what was opened and
 * throws KILN_ERR_SERVER_CONFIG_INVALID.
 */
export async function startApis(
  deps: ApiDeps,
  log: ServerLog,
): Promise<{ apps: Record<ApiName, FastifyInstance>; addresses: Record<ApiName, string> }> {
  const { config } = deps;
  const titles: Record<ApiName, string> = {
    inference: 'Kiln inference API (TorchServe, KServe v2 and v1)',
    management: 'Kiln management API',
    metrics: 'Kiln metrics API',
  };
  const apps: Partial<Record<ApiName, FastifyInstance>> = {};
  const addresses = { inference: '', management: '', metrics: '' };
  const startedAt = Date.now();
  try {
    // One API at a time, inference first, with a turn of the event loop between: building an app
    // compiles its route schemas (about 150 ms for the management API), and a worker that has
    // unpacked its model meanwhile is sent the model without waiting for the rest.
    for (const name of ['inference', 'management', 'metrics'] as const) {
      const app = (apps[name] = await buildApp(name, titles[name], deps));
      observeRequests(app, {
        metrics: name === 'inference' ? deps.metrics : undefined,
        registry: deps.registry,
        accessLog: deps.accessLog,
      });
      if (name === 'inference') {
        await app.register(multipart, { limits: { fileSize: config.maxRequestSizeBytes, files: 16, fields: 64 } });
        inferenceApi(app, deps.inference);
        explanationsApi(app, deps.inference);
        v2Api(app, deps.inference);
        v2RepositoryApi(app, deps.service, config.maxRequestSizeBytes);
        v1Api(app, deps.inference);
      } else if (name === 'management') {
        managementApi(app, deps.service);
        statusApi(app, {
          registry: deps.registry,
          metrics: deps.metrics,
          addresses: () => addresses,
          inferenceNeedsToken: config.token !== undefined && config.authApis.includes('inference'),
          startedAt,
        });
      } else {
        metricsApi(app, deps.metrics);
      }
      addresses[name] = await listen(app, name, config, log);
      if (name === 'inference') await deps.inferenceFirst;
      await new Promise((resolve) => setImmediate(resolve));
    }
  } catch (error) {
    await Promise.all(Object.values(apps).map((app) => app.close()));
    throw error;
  }
  return { apps: apps as Record<ApiName, FastifyInstance>, addresses };
}

/** Binds one API to its address, logs where, and warns when it is reachable beyond loopback without a token. */
async function listen(app: FastifyInstance, name: ApiName, config: ServerConfig, log: ServerLog): Promise<string> {
  const address = config[`${name}Address`];
  const { host, port } = parseAddress(address);
  await app.listen({ host, port }).catch((error: NodeJS.ErrnoException) => {
    throw serverError(
      'KILN_ERR_SERVER_CONFIG_INVALID',
      `the ${name} API cannot listen on ${address}: ${error.code === 'EADDRINUSE' ? 'the address is in use' : error.message}; choose another --${name}-address`,
    );
  });
  const bound = app.server.address();
  const actual = typeof bound === 'object' && bound !== null ? `http://${host.includes(':') ? `[${host}]` : host}:${bound.port}` : address;
  const guarded = config.token !== undefined && config.authApis.includes(name);
  log.info(`${name} API listening on ${actual}${guarded ? ' (token required)' : ''}`);
  if (!isLoopback(host) && !guarded) {
    log.warn(
      `WARNING: the ${name} API listens on ${host}, beyond this machine, with no token. Anyone who can reach it can ${name === 'management' ? (config.enableModelApi ? 'register, scale and unregister models' : 'scale models') : name === 'inference' ? 'run your models' : 'read your metrics'}. Set --token-file (or KILN_TOKEN), or bind to 127.0.0.1.`,
    );
  }
  return actual;
}

/** One API's app: shared settings, then CORS and the token check where configured. */
async function buildApp(name: ApiName, title: string, deps: ApiDeps): Promise<FastifyInstance> {
  const { config } = deps;
  const app = await createApp({
    title,
    maxRequestSizeBytes: config.maxRequestSizeBytes,
    requestTimeoutMs: config.requestTimeoutMs,
    headersTimeoutMs: config.headersTimeoutMs,
    closing: deps.closing,
    jsonBodies: name === 'management',
    onServerError: deps.inference.onServerError,
  });
  await allowOrigins(app, config.corsAllowedOrigins);
  if (config.token !== undefined && config.authApis.includes(name)) {
    requireToken(app, config.token, sendErrorFor, name === 'inference' && !config.healthAuth ? HEALTH_ROUTES : undefined);
  }
  return app;
}
