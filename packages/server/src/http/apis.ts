import type { FastifyInstance } from 'fastify';
import multipart from '@fastify/multipart';
import { parseAddress, type ApiName, type ServerConfig } from '../config/server-config.js';
import { serverError } from '../errors.js';
import { v1Api } from '../kserve/v1-api.js';
import { v2Api } from '../kserve/v2-api.js';
import type { ModelService } from '../registry/model-service.js';
import type { ModelRegistry } from '../registry/registry.js';
import type { ServerLog } from '../serve.js';
import { createApp, sendErrorFor } from './create-app.js';
import { inferenceApi, type InferenceDeps } from './inference-api.js';
import { managementApi } from './management-api.js';
import { metricsApi, type ServerMetrics } from './metrics-api.js';
import { allowOrigins, isLoopback, requireToken } from './security.js';

export interface ApiDeps {
  config: ServerConfig;
  inference: InferenceDeps;
  service: ModelService;
  registry: ModelRegistry;
  metrics: ServerMetrics;
  closing: () => boolean;
}

/**
 * Builds the inference, management and metrics APIs and binds each to its address. serve.ts imports
 * this module only after the models have started loading: fastify and its plugins take a while to
 * load, and the workers boot meanwhile. An address that cannot be bound closes what was opened and
 * throws KILN_ERR_SERVER_CONFIG_INVALID.
 */
export async function startApis(deps: ApiDeps, log: ServerLog): Promise<{ apps: Record<ApiName, FastifyInstance>; addresses: Record<ApiName, string> }> {
  const { config } = deps;
  const apps: Record<ApiName, FastifyInstance> = {
    inference: await buildApp('inference', 'Kiln inference API (TorchServe, KServe v2 and v1)', deps),
    management: await buildApp('management', 'Kiln management API', deps),
    metrics: await buildApp('metrics', 'Kiln metrics API', deps),
  };
  await apps.inference.register(multipart, { limits: { fileSize: config.maxRequestSizeBytes, files: 16, fields: 64 } });
  inferenceApi(apps.inference, deps.inference);
  v2Api(apps.inference, deps.inference);
  v1Api(apps.inference, deps.inference);
  managementApi(apps.management, deps.service);
  metricsApi(apps.metrics, deps.registry, deps.metrics);

  const addresses = { inference: '', management: '', metrics: '' };
  try {
    for (const name of ['inference', 'management', 'metrics'] as const) {
      const address = config[`${name}Address`];
      const { host, port } = parseAddress(address);
      await apps[name].listen({ host, port }).catch((error: NodeJS.ErrnoException) => {
        throw serverError('KILN_ERR_SERVER_CONFIG_INVALID', `the ${name} API cannot listen on ${address}: ${error.code === 'EADDRINUSE' ? 'the address is in use' : error.message}; choose another --${name}-address`);
      });
      const bound = apps[name].server.address();
      const actual = typeof bound === 'object' && bound !== null ? `http://${host.includes(':') ? `[${host}]` : host}:${bound.port}` : address;
      addresses[name] = actual;
      const guarded = config.token !== undefined && config.authApis.includes(name);
      log.info(`${name} API listening on ${actual}${guarded ? ' (token required)' : ''}`);
      if (!isLoopback(host) && !guarded) {
        log.warn(`WARNING: the ${name} API listens on ${host}, beyond this machine, with no token. Anyone who can reach it can ${name === 'management' ? (config.enableModelApi ? 'register, scale and unregister models' : 'scale models') : name === 'inference' ? 'run your models' : 'read your metrics'}. Set --token-file (or KILN_TOKEN), or bind to 127.0.0.1.`);
      }
    }
  } catch (error) {
    await Promise.all(Object.values(apps).map((app) => app.close()));
    throw error;
  }
  return { apps, addresses };
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
  });
  await allowOrigins(app, config.corsAllowedOrigins);
  if (config.token !== undefined && config.authApis.includes(name)) {
    requireToken(app, config.token, sendErrorFor);
  }
  return app;
}
