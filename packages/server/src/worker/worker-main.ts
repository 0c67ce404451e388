/**
 * Entry of a worker, thread or process: loads one model version with the SDK's loader and serves
 * the batches the parent sends, one at a time. A handler that crashes ends this worker; the pool
 * restarts it.
 */
import { getHeapStatistics } from 'node:v8';
import { toKilnError } from '@kiln/handler-sdk/errors';
import { handlerHooks, toWireError } from '@kiln/handler-sdk/runtime';
import { isOwnedBuffer, loadModel, runBatch, setNativeHooks, type LoadedModel } from '@kiln/handler-sdk/worker';
import { resultBuffers, returnedBuffers, type ParentMessage } from '../pool/protocol.js';
import { openPort } from './port.js';

process.setSourceMapsEnabled(true);
const port = openPort();
if (port.nativeHooks !== undefined) setNativeHooks(port.nativeHooks);
let model: LoadedModel | undefined;
/** The batch in hand: a stop waits for it, so a worker scaled down never drops a request. */
let running: Promise<void> = Promise.resolve();

const heapBytes = () => getHeapStatistics().used_heap_size;

async function onMessage(message: ParentMessage): Promise<void> {
  switch (message.type) {
    case 'load':
      try {
        model = await loadModel(message.modelDir, {
          manifest: message.manifest,
          config: message.config,
          device: message.device,
          intraOpNumThreads: message.intraOpNumThreads,
          logLevel: message.logLevel,
          logSink: (level, text, fields) => port.send({ type: 'log', level, message: text, fields }),
          metricSink: (sample) => port.send({ type: 'metric', sample }),
        });
        const providers = (model.handler as { providers?: string[] }).providers ?? [];
        port.send({ type: 'ready', providers, heapBytes: heapBytes(), hooks: handlerHooks(model.handler) });
      } catch (error) {
        port.send({ type: 'load-failed', error: toWireError(toKilnError(error, 'KILN_ERR_HANDLER_LOAD')) });
      }
      return;
    case 'batch': {
      const loaded = model!;
      running = runBatch(loaded, message.requests).then((results) => {
        // Buffers the runtime made for these answers (ONNX Runtime's outputs) are handed over;
        // anything the handler may keep, a cached tensor say, is copied. A thread gives the
        // requests' buffers back for the next bodies: the handler is done with them.
        const transfer = resultBuffers(results, isOwnedBuffer);
        const returned = port.lent ? returnedBuffers(message.requests, results) : undefined;
        // A handler that timed nothing (its own handle(), say) reports no phases.
        const { preprocess, inference, postprocess } = loaded.context.timings;
        const timings = preprocess + inference + postprocess > 0 ? { preprocess, inference, postprocess } : undefined;
        port.send(
          { type: 'results', id: message.id, results, heapBytes: heapBytes(), returned, timings },
          returned === undefined ? transfer : [...transfer, ...returned],
        );
      });
      return running;
    }
    case 'stop':
      await running;
      await model?.handler.dispose?.();
      return process.exit(0);
    case 'exit':
      return process.exit(1);
  }
}

port.onMessage((message) => void onMessage(message));
port.booted();

// An error escaping the handler's promises would otherwise end the worker with no trace at the parent.
const fatal = (error: unknown) => {
  port.send({ type: 'fatal', error: toWireError(toKilnError(error, 'KILN_ERR_HANDLER_FAILED')) });
  process.exitCode = 1;
  setImmediate(() => process.exit(1));
};
process.on('uncaughtException', fatal);
process.on('unhandledRejection', fatal);
