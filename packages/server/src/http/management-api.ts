import type { FastifyInstance } from 'fastify';
import type { ModelRegistry } from '../registry/registry.js';

/** The management API's model list (`GET /models`), in TorchServe's shape. */
export function managementApi(app: FastifyInstance, registry: ModelRegistry): void {
  app.get('/models', async () => ({
    models: registry.names().map((name) => {
      const entry = registry.resolve(name);
      return { modelName: name, modelUrl: entry.archive };
    }),
  }));
}
