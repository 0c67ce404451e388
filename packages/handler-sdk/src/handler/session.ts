import { InferenceSession } from 'onnxruntime-node';
import type { Logger } from './types.js';

export interface SessionOptions {
  executionProviders: readonly string[];
  deviceId: number | undefined;
  intraOpNumThreads: number;
  logger?: Logger;
}

/**
 * Creates an ONNX Runtime session, trying the execution providers in order of preference: a
 * provider this machine lacks (CUDA without the CUDA build, WebGPU without a GPU) is dropped with a
 * warning and the next is tried. Returns the session and the provider list it runs with.
 */
export async function createSession(
  modelPath: string,
  options: SessionOptions,
): Promise<{ session: InferenceSession; providers: string[] }> {
  // ONNX Runtime's Linux build carries a telemetry client: off unless the user turned it on
  // (the kiln command sets this before ONNX Runtime loads; this covers the SDK used on its own).
  process.env.ORT_DISABLE_TELEMETRY ??= '1';
  const wanted = options.executionProviders.length > 0 ? [...options.executionProviders] : ['cpu'];
  let firstError: unknown;
  for (let start = 0; start < wanted.length; start++) {
    const providers = wanted.slice(start);
    try {
      const session = await InferenceSession.create(modelPath, {
        executionProviders: providers.map((name) =>
          (name === 'cuda' || name === 'tensorrt') && options.deviceId !== undefined ? { name, deviceId: options.deviceId } : name,
        ) as InferenceSession.ExecutionProviderConfig[],
        intraOpNumThreads: options.intraOpNumThreads,
        interOpNumThreads: 1,
        graphOptimizationLevel: 'all',
      });
      return { session, providers };
    } catch (error) {
      firstError ??= error;
      if (start + 1 < wanted.length) {
        options.logger?.warn(`execution provider "${wanted[start]}" is not available; trying ${wanted.slice(start + 1).join(', ')}`, {
          reason: (error as Error).message.split('\n')[0],
        });
      }
    }
  }
  throw firstError;
}
