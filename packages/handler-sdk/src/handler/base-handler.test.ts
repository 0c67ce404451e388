import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { BaseHandler, HandlerResponse, RequestError, tensor, type HandlerContext, type KilnRequest, type Tensors } from '../index.js';
import { runHandler, runHandlerReport } from '../testing/index.js';
import { tempDir } from '../../../../test/support/kiln.js';
import { ElemType, linearExpected, linearModel, writeModel } from '../../../../test/support/onnx-models.js';

interface Row {
  row: number[];
}

/** y = xW + b on one row per request; counts how many times the model runs. */
class LinearHandler extends BaseHandler<Row, number[]> {
  runs: number[] = [];

  override preprocess(request: KilnRequest<Row>): Tensors {
    const row = request.json?.row;
    if (!Array.isArray(row) || row.length !== 4) throw new RequestError(`"row" must be 4 numbers, received ${JSON.stringify(row)}`);
    return { x: tensor('float32', row, [4]) };
  }

  override async inference(batch: Tensors, context: HandlerContext): Promise<Tensors> {
    this.runs.push(batch.x!.dims[0]!);
    return super.inference(batch, context);
  }

  override postprocess(output: Tensors, _request?: KilnRequest<Row>): number[] {
    return [...(output.y!.data as Float32Array)];
  }
}

const ROWS = [
  [1, 2, 3, 4],
  [-1, 0.5, 0, 2],
  [0, 0, 0, 0],
  [10, -3, 2.5, 1],
];
const fround = (values: number[]) => values.map(Math.fround);

describe('BaseHandler', () => {
  test('a batch of 4 is one ONNX run, and each request gets its own row of y = xW + b', async () => {
    const model = writeModel(tempDir(), 'linear.onnx', linearModel());
    const handler = new LinearHandler();
    const results = await runHandler(
      handler,
      ROWS.map((row) => ({ json: { row } })),
      { modelPath: model },
    );
    expect(handler.runs).toEqual([4]);
    expect(results.map((r) => r.json)).toEqual(ROWS.map((row) => fround(linearExpected(row))));
  });

  test("context.timings holds the batch's milliseconds in each phase, reset for every batch", async () => {
    const model = writeModel(tempDir(), 'linear.onnx', linearModel());
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    const seen: HandlerContext['timings'][] = [];
    const linear = new LinearHandler();
    class Slow extends BaseHandler<Row, number[]> {
      // Only the first request is slow: the later batches show the timings start again from 0.
      override async preprocess(request: KilnRequest<Row>): Promise<Tensors> {
        if (request.json?.row[0] === ROWS[0]![0]) await sleep(30);
        return linear.preprocess(request);
      }
      override async postprocess(output: Tensors, request: KilnRequest<Row>): Promise<number[]> {
        if (request.json?.row[0] === ROWS[0]![0]) await sleep(20);
        return linear.postprocess(output);
      }
      override async handle(requests: KilnRequest<Row>[], context: HandlerContext) {
        const results = await super.handle(requests, context);
        seen.push({ ...context.timings });
        return results;
      }
    }
    const results = await runHandler(
      new Slow(),
      ROWS.map((row) => ({ json: { row } })),
      { modelPath: model, oneByOne: true },
    );
    expect(results.every((r) => r.ok)).toBe(true);
    expect(seen).toHaveLength(4);
    // Timers may fire a millisecond early by performance.now(); a phase never counts another's time.
    expect(seen[0]!.preprocess).toBeGreaterThanOrEqual(28);
    expect(seen[0]!.postprocess).toBeGreaterThanOrEqual(18);
    expect(seen[0]!.inference).toBeGreaterThan(0);
    expect(seen[0]!.inference).toBeLessThan(18);
    for (const later of seen.slice(1)) {
      expect(later.preprocess).toBeLessThan(18);
      expect(later.postprocess).toBeLessThan(18);
      expect(later.inference).toBeGreaterThan(0);
    }
  });

  test('one bad request in a batch of 4 fails alone: 3 answers and 1 error', async () => {
    const model = writeModel(tempDir(), 'linear.onnx', linearModel());
    const handler = new LinearHandler();
    const inputs = [{ json: { row: ROWS[0] } }, { json: { row: [1, 2] } }, { json: { row: ROWS[2] } }, { json: { row: ROWS[3] } }];
    const results = await runHandler(handler, inputs, { modelPath: model });
    expect(handler.runs).toEqual([3]);
    expect(results.map((r) => r.ok)).toEqual([true, false, true, true]);
    expect(results[1]).toMatchObject({
      status: 400,
      error: { code: 'KILN_ERR_BAD_REQUEST', message: '"row" must be 4 numbers, received [1,2]', phase: 'preprocess' },
    });
    expect(results[3]!.json).toEqual(fround(linearExpected(ROWS[3]!)));
  });

  test('a body that is not JSON fails that request with 400, before the handler sees it', async () => {
    const model = writeModel(tempDir(), 'linear.onnx', linearModel());
    const results = await runHandler(
      LinearHandler,
      [{ body: '{"row": [1,', contentType: 'application/json' }, { json: { row: ROWS[0] } }],
      { modelPath: model },
    );
    expect(results[0]).toMatchObject({ ok: false, status: 400, error: { code: 'KILN_ERR_BAD_REQUEST', phase: 'decode' } });
    expect(results[1]!.json).toEqual(fround(linearExpected(ROWS[0]!)));
  });

  test('a postprocess that throws fails only its request, with the handler message and a 500', async () => {
    class Picky extends LinearHandler {
      override postprocess(output: Tensors, request: KilnRequest<Row>): number[] {
        if (request.json!.row[0] === 0) throw new Error('zero rows are not allowed here');
        return super.postprocess(output);
      }
    }
    const model = writeModel(tempDir(), 'linear.onnx', linearModel());
    const results = await runHandler(
      Picky,
      ROWS.map((row) => ({ json: { row } })),
      { modelPath: model },
    );
    expect(results.map((r) => r.ok)).toEqual([true, true, false, true]);
    expect(results[2]).toMatchObject({
      status: 500,
      error: { code: 'KILN_ERR_HANDLER_FAILED', message: 'postprocess failed: zero rows are not allowed here' },
    });
  });

  test('an inference that throws fails its whole batch with 500 KILN_ERR_INFERENCE_FAILED, in phase inference', async () => {
    class Broken extends LinearHandler {
      override async inference(): Promise<Tensors> {
        throw new Error('the accelerator went away');
      }
    }
    const model = writeModel(tempDir(), 'linear.onnx', linearModel());
    const results = await runHandler(
      Broken,
      ROWS.slice(0, 2).map((row) => ({ json: { row } })),
      { modelPath: model },
    );
    const failure = {
      ok: false,
      status: 500,
      error: { code: 'KILN_ERR_INFERENCE_FAILED', message: 'inference failed: the accelerator went away', phase: 'inference' },
    };
    expect(results).toMatchObject([failure, failure]);
  });

  test('requests with different row counts but the same trailing dimensions stack into one run', async () => {
    const model = writeModel(tempDir(), 'linear.onnx', linearModel());
    class TwoRows extends LinearHandler {
      override preprocess(request: KilnRequest<Row>): Tensors {
        const rows = request.json!.row.length === 8 ? 2 : 1;
        return { x: tensor('float32', request.json!.row, [rows, 4]) };
      }
      override postprocess(output: Tensors): number[] {
        return [...(output.y!.data as Float32Array)];
      }
    }
    const handler = new TwoRows();
    const results = await runHandler(handler, [{ json: { row: [...ROWS[0]!, ...ROWS[1]!] } }, { json: { row: ROWS[2] } }], {
      modelPath: model,
    });
    expect(handler.runs).toEqual([3]); // 2 rows + 1 row stack: the trailing dims agree
    expect(results[0]!.json).toEqual(fround([...linearExpected(ROWS[0]!), ...linearExpected(ROWS[1]!)]));
    expect(results[1]!.json).toEqual(fround(linearExpected(ROWS[2]!)));
  });

  test('requests whose trailing dimensions differ run in separate groups instead of failing', async () => {
    // y = the sum of each row, for rows of any length.
    const model = writeModel(tempDir(), 'sum.onnx', {
      inputs: [{ name: 'x', elemType: ElemType.FLOAT, dims: ['n', 'm'] }],
      outputs: [{ name: 'y', elemType: ElemType.FLOAT, dims: ['n', 1] }],
      nodes: [{ opType: 'ReduceSum', inputs: ['x', 'axes'], outputs: ['y'], attributes: { keepdims: 1 } }],
      initializers: [],
      constants: [{ name: 'axes', dims: [1], values: [1], int64: true }],
    });
    const runs: number[][] = [];
    class Sums extends BaseHandler<{ row: number[] }, number> {
      override preprocess(request: KilnRequest<{ row: number[] }>): Tensors {
        return { x: tensor('float32', request.json!.row, [1, request.json!.row.length]) };
      }
      override async inference(batch: Tensors, context: HandlerContext): Promise<Tensors> {
        runs.push([...batch.x!.dims]);
        return super.inference(batch, context);
      }
      override postprocess(output: Tensors): number {
        return (output.y!.data as Float32Array)[0]!;
      }
    }
    const rows = [
      [1, 2, 3],
      [4, 5],
      [6, 7, 8],
      [9, 10],
    ];
    const results = await runHandler(
      Sums,
      rows.map((row) => ({ json: { row } })),
      { modelPath: model },
    );
    expect(results.map((r) => r.json)).toEqual([6, 9, 21, 19]);
    // Two groups, each one run of the requests that stack: rows of 3, then rows of 2.
    expect(runs).toEqual([
      [2, 3],
      [2, 2],
    ]);
  });

  test('sync and async hooks both work, and a handler may skip ONNX by overriding handle', async () => {
    class Echo extends BaseHandler<{ text: string }, { upper: string }> {
      override async handle(requests: KilnRequest<{ text: string }>[]) {
        return requests.map((r) =>
          r.json?.text === undefined ? new RequestError('"text" is required') : { upper: r.json.text.toUpperCase() },
        );
      }
    }
    const results = await runHandler(Echo, [{ json: { text: 'kiln' } }, { json: {} }]);
    expect(results[0]!.json).toEqual({ upper: 'KILN' });
    expect(results[1]).toMatchObject({ ok: false, status: 400, error: { message: '"text" is required' } });
  });

  test('the default hooks take and give tensors as JSON (the tensor handler)', async () => {
    const model = writeModel(tempDir(), 'linear.onnx', linearModel());
    const results = await runHandler(
      BaseHandler,
      [{ json: { inputs: [{ name: 'x', shape: [2, 4], datatype: 'FP32', data: [ROWS[0], ROWS[1]] }] } }],
      { modelPath: model },
    );
    expect(results[0]!.json).toEqual({
      outputs: [{ name: 'y', datatype: 'FP32', shape: [2, 3], data: fround([...linearExpected(ROWS[0]!), ...linearExpected(ROWS[1]!)]) }],
    });
  });

  test('inputs that do not match the signature get 400 naming the input', async () => {
    const model = writeModel(tempDir(), 'linear.onnx', linearModel());
    const results = await runHandler(BaseHandler, [{ json: { inputs: { x: { shape: [1, 5], data: [1, 2, 3, 4, 5] } } } }], {
      modelPath: model,
    });
    expect(results[0]).toMatchObject({
      ok: false,
      status: 400,
      error: {
        code: 'KILN_ERR_INPUT_MISMATCH',
        message: 'input "x" must have shape [-1, 4], received [1, 5] (dimension 1 is 5, expected 4)',
      },
    });
  });

  test('handle returning the wrong number of results fails every request with a clear message', async () => {
    class Short extends BaseHandler {
      override async handle() {
        return [{ a: 1 }];
      }
    }
    const results = await runHandler(Short, [{ json: {} }, { json: {} }]);
    expect(results.every((r) => r.error?.message.includes('got 2 requests and returned 1 results'))).toBe(true);
  });

  test('context carries the config, and metrics carry the model name', async () => {
    class Configured extends BaseHandler<unknown, string, { greeting: string }> {
      override async handle(requests: KilnRequest[], context: HandlerContext<{ greeting: string }>) {
        context.metrics.counter('greetings_total').inc(requests.length);
        return requests.map(() => `${context.config.handler.greeting} from ${context.modelName} (batch ${context.batchSize})`);
      }
    }
    const report = await runHandlerReport(Configured, [{ json: 1 }], {
      modelName: 'greeter',
      config: { batchSize: 4, handler: { greeting: 'hi' } },
    });
    expect(report.results[0]).toMatchObject({ text: 'hi from greeter (batch 4)', contentType: 'text/plain; charset=utf-8' });
    expect(report.metrics).toEqual([
      { kind: 'counter', name: 'greetings_total', help: undefined, value: 1, labels: { model_name: 'greeter', model_version: '1' } },
    ]);
  });

  test('answers can be bytes or carry their own status and headers', async () => {
    class Bytes extends BaseHandler {
      override async handle(requests: KilnRequest[]) {
        return requests.map((_, i) =>
          i === 0 ? Buffer.from('raw') : HandlerResponse.json({ queued: true }, { status: 202, headers: { 'x-kiln': 'yes' } }),
        );
      }
    }
    const results = await runHandler(Bytes, [{ json: 1 }, { json: 2 }]);
    expect(Buffer.from(results[0]!.bytes!).toString()).toBe('raw');
    expect(results[0]!.contentType).toBe('application/octet-stream');
    expect(results[1]).toMatchObject({ status: 202, headers: { 'x-kiln': 'yes' }, json: { queued: true } });
  });
});

test('a file written beside the model is in context.modelDir', async () => {
  const dir = tempDir();
  const model = writeModel(dir, 'linear.onnx', linearModel());
  writeFileSync(join(dir, 'note.txt'), 'beside');
  class Reader extends BaseHandler {
    override async handle(requests: KilnRequest[], context: HandlerContext) {
      const { readFileSync } = await import('node:fs');
      return requests.map(() => readFileSync(join(context.modelDir, 'note.txt'), 'utf8'));
    }
  }
  expect((await runHandler(Reader, [{ json: 1 }], { modelPath: model }))[0]!.text).toBe('beside');
});

test('a model with a fixed batch dimension of 1 runs one request at a time', async () => {
  const dir = tempDir();
  const fixed = {
    ...linearModel(),
    inputs: [{ name: 'x', elemType: 1, dims: [1, 4] }],
    outputs: [{ name: 'y', elemType: 1, dims: [1, 3] }],
  };
  const model = writeModel(dir, 'fixed.onnx', fixed);
  const handler = new LinearHandler();
  const results = await runHandler(
    handler,
    ROWS.slice(0, 3).map((row) => ({ json: { row } })),
    { modelPath: model },
  );
  expect(handler.runs).toEqual([1, 1, 1]);
  expect(results.map((r) => r.json)).toEqual(ROWS.slice(0, 3).map((row) => fround(linearExpected(row))));
});

test('an initialize that throws is a load error, as in a worker', async () => {
  class Broken extends BaseHandler {
    override async initialize(): Promise<void> {
      throw new Error('no labels');
    }
  }
  await expect(runHandler(Broken, [{ json: 1 }])).rejects.toMatchObject({
    code: 'KILN_ERR_HANDLER_LOAD',
    message: 'model "test-model" version 1: initialize() failed: no labels',
  });
});
