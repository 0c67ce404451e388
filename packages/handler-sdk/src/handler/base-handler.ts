import { join } from 'node:path';
import type { InferenceSession } from 'onnxruntime-node';
import { isKilnError, sdkError, toKilnError } from '../errors/kiln-error.js';
import { tensorsFromJson } from '../tensor/json-tensors.js';
import { batchKey, collate, conformToSignature, split } from './collate.js';
import { markOwned } from './owned-buffers.js';
import { createSession } from './session.js';
import type { Answer, Handler, HandlerContext, KilnRequest, Tensors } from './types.js';

export type HandlerPhase = 'preprocess' | 'inference' | 'postprocess';

/**
 * The preprocess → inference → postprocess template. `handle` calls preprocess once per request,
 * stacks the requests' tensors along dimension 0 (checked against the model's signature), makes
 * one ONNX Runtime run over the batch, splits the outputs back per request and calls postprocess
 * once per request. A request that fails in preprocess or postprocess fails alone.
 *
 * Type parameters: `TJson` is a request's decoded JSON body, `TAnswer` a request's answer, and
 * `TConfig` the `handler:` section of model-config.yaml.
 */
export class BaseHandler<TJson = unknown, TAnswer extends Answer = Answer, TConfig = Record<string, unknown>> implements Handler<TAnswer> {
  /** The ONNX Runtime session, created by initialize() when the archive has a model. */
  session: InferenceSession | undefined;
  /** The execution providers the session runs with, after unavailable ones were dropped. */
  providers: string[] = [];
  /** Where batches are stacked, kept from one batch to the next (see collate). */
  private readonly batchBuffers = new Map<string, ArrayBuffer>();

  async initialize(context: HandlerContext<TConfig>): Promise<void> {
    const file = context.manifest.model.serializedFile;
    if (file === undefined) return;
    const { session, providers } = await createSession(join(context.modelDir, file), {
      executionProviders: context.executionProviders,
      deviceId: context.device.id,
      intraOpNumThreads: context.intraOpNumThreads,
      logger: context.logger,
    });
    this.session = session;
    this.providers = providers;
  }

  /**
   * Turns one request into named input tensors. A tensor may carry the batch dimension or leave it
   * out (one row). The default reads tensors from the KServe v2 protocol or from a JSON body
   * `{"inputs": ...}`.
   */
  preprocess(request: KilnRequest<TJson>, context: HandlerContext<TConfig>): Tensors | Promise<Tensors> {
    if (request.tensors !== undefined) return { ...request.tensors };
    if (request.json === undefined) {
      throw sdkError(
        'KILN_ERR_BAD_REQUEST',
        `expected a JSON body with "inputs" (content type application/json), received ${request.contentType ?? 'no content type'}`,
      );
    }
    return tensorsFromJson(request.json, context.signature);
  }

  /** One ONNX Runtime run over the whole batch. */
  async inference(batch: Tensors, _context: HandlerContext<TConfig>): Promise<Tensors> {
    if (this.session === undefined) {
      throw sdkError(
        'KILN_ERR_INFERENCE_FAILED',
        'this handler has no ONNX session: the archive has no --serialized-file, so override inference() or handle()',
      );
    }
    const outputs = (await this.session.run(batch)) as Tensors;
    markOwned(outputs);
    return outputs;
  }

  /**
   * Turns one request's slice of the outputs into its answer. The default returns the tensors,
   * which TorchServe routes send as `{"outputs": [{name, datatype, shape, data}]}`.
   */
  postprocess(output: Tensors, _request: KilnRequest<TJson>, _context: HandlerContext<TConfig>): TAnswer | Promise<TAnswer> {
    return output as unknown as TAnswer;
  }

  /**
   * The KServe v2 hook, in place of preprocess for a request that arrived as named tensors
   * (`POST /v2/models/{m}/infer`). The default passes them to the model as they are; override it
   * to turn a v2 client's tensors into the model's (a BYTES image, say).
   */
  preprocessTensors(
    tensors: Readonly<Tensors>,
    _request: KilnRequest<TJson>,
    _context: HandlerContext<TConfig>,
  ): Tensors | Promise<Tensors> {
    return { ...tensors };
  }

  /** The KServe v2 hook, in place of postprocess: must answer named tensors. The default returns the model's outputs. */
  postprocessTensors(output: Tensors, _request: KilnRequest<TJson>, _context: HandlerContext<TConfig>): Tensors | Promise<Tensors> {
    return output;
  }

  async handle(requests: KilnRequest<TJson>[], context: HandlerContext<TConfig>): Promise<(TAnswer | Error)[]> {
    const results: (TAnswer | Error)[] = new Array(requests.length);
    const groups = new Map<string, { index: number; tensors: Tensors; rows: number }[]>();
    // Each phase is timed as the wall time it takes for the whole batch (kiln_batch_seconds).
    const timings = context.timings;
    let mark = performance.now();
    const lap = (phase: HandlerPhase) => {
      const now = performance.now();
      timings[phase] += now - mark;
      mark = now;
    };

    await Promise.all(
      requests.map(async (request, index) => {
        try {
          const inputs =
            request.tensors === undefined
              ? await this.preprocess(request, context)
              : await this.preprocessTensors(request.tensors, request, context);
          const prepared = conformToSignature(inputs, context.signature);
          const key = batchKey(prepared.tensors);
          const group = groups.get(key) ?? [];
          group.push({ index, ...prepared });
          groups.set(key, group);
        } catch (error) {
          results[index] = inPhase(error, 'preprocess');
        }
      }),
    );
    lap('preprocess');

    // Requests whose tensors stack run together; in the common case that is one group and one run.
    // A model whose batch dimension is fixed (say [1, 3, 224, 224]) runs in chunks of that size.
    const maxRows = fixedBatch(context.signature);
    for (const group of [...groups.values()].flatMap((g) =>
      chunk(
        g.sort((a, b) => a.index - b.index),
        maxRows,
      ),
    )) {
      let slices: Tensors[];
      try {
        // The stacked batch lives in batchBuffers: valid until the next batch, so inference() must
        // not keep it (ONNX Runtime copies nothing it needs later).
        const outputs = await this.inference(
          collate(
            group.map((g) => g.tensors),
            this.batchBuffers,
          ),
          context,
        );
        slices = split(
          outputs,
          group.map((g) => g.rows),
          context.signature,
        );
      } catch (error) {
        const failure = inPhase(error, 'inference');
        for (const item of group) results[item.index] = failure;
        lap('inference');
        continue;
      }
      lap('inference');
      await Promise.all(
        group.map(async (item, i) => {
          try {
            const request = requests[item.index]!;
            results[item.index] = await (request.tensors === undefined
              ? this.postprocess(slices[i]!, request, context)
              : (this.postprocessTensors(slices[i]!, request, context) as TAnswer | Promise<TAnswer>));
          } catch (error) {
            results[item.index] = inPhase(error, 'postprocess');
          }
        }),
      );
      lap('postprocess');
    }
    return results;
  }

  async dispose(): Promise<void> {
    await this.session?.release();
    this.session = undefined;
  }
}

/** The model's fixed batch size when its first input fixes dimension 0; otherwise unlimited. */
function fixedBatch(signature: HandlerContext['signature']): number {
  const first = signature?.inputs[0]?.shape?.[0];
  return first !== undefined && first > 0 ? first : Infinity;
}

/** Splits a group into runs of at most `maxRows` rows (a request is never split). */
function chunk<T extends { rows: number }>(items: T[], maxRows: number): T[][] {
  if (maxRows === Infinity) return [items];
  const runs: T[][] = [];
  let current: T[] = [];
  let rows = 0;
  for (const item of items) {
    if (current.length > 0 && rows + item.rows > maxRows) {
      runs.push(current);
      current = [];
      rows = 0;
    }
    current.push(item);
    rows += item.rows;
  }
  if (current.length > 0) runs.push(current);
  return runs;
}

/** Records the phase on an error so the client and the logs can say where it happened. */
function inPhase(error: unknown, phase: HandlerPhase): Error {
  if (!isKilnError(error) && phase === 'inference') {
    const err = error instanceof Error ? error : new Error(String(error));
    const wrapped = sdkError('KILN_ERR_INFERENCE_FAILED', `inference failed: ${err.message}`, { cause: err });
    wrapped.stack = err.stack ?? wrapped.stack;
    wrapped.phase = phase;
    return wrapped;
  }
  return toKilnError(error, 'KILN_ERR_HANDLER_FAILED', phase);
}
