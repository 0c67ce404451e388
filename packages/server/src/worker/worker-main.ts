/**
 * Entry of a worker process: loads one model version with the SDK's loader and serves batches
 * sent by the parent. A handler crash ends this process; the parent restarts it.
 */
import { loadModel, runBatch, toWireError, type LoadedModel } from '@kiln/handler-sdk';
import type { ParentMessage, WorkerMessage } from '../pool/protocol.js';

let model: LoadedModel | undefined;

function send(message: WorkerMessage): void {
  process.send?.(message);
}

async function onMessage(message: ParentMessage): Promise<void> {
  switch (message.type) {
    case 'load':
      try {
        model = await loadModel(message.modelDir, {
          device: message.device,
          intraOpNumThreads: message.intraOpNumThreads,
          logSink: (level, text, fields) => send({ type: 'log', level, message: text, fields }),
          metricSink: (sample) => send({ type: 'metric', sample }),
        });
        const providers = (model.handler as { providers?: string[] }).providers ?? [];
        send({ type: 'ready', providers });
      } catch (error) {
        send({ type: 'load-failed', error: toWireError(error, 0) });
      }
      return;
    case 'batch': {
      const results = await runBatch(model!, message.requests);
      send({ type: 'results', id: message.id, results });
      return;
    }
    case 'stop':
      await model?.handler.dispose?.();
      process.exit(0);
  }
}

process.on('message', (message: ParentMessage) => void onMessage(message));

// An error escaping the handler's promises would otherwise print and exit with no trace at the parent.
const fatal = (error: unknown) => {
  send({ type: 'fatal', error: toWireError(error, 0) });
  process.exitCode = 1;
  setImmediate(() => process.exit(1));
};
process.on('uncaughtException', fatal);
process.on('unhandledRejection', fatal);
process.on('disconnect', () => process.exit(0)); // the parent is gone
