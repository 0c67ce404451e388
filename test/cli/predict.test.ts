import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { kiln, tempDir } from '../support/kiln.js';
import { linearExpected, linearModel, writeModel } from '../support/onnx-models.js';

const HANDLER = `import { BaseHandler, RequestError, tensor, type KilnRequest, type Tensors } from '@kiln/handler-sdk';

export default class Linear extends BaseHandler<{ row: number[] }, { y: number[] }> {
  override preprocess(request: KilnRequest<{ row: number[] }>): Tensors {
    const row = request.json?.row;
    if (!Array.isArray(row)) throw new RequestError('send {"row": [4 numbers]}');
    return { x: tensor('float32', row, [4]) };
  }

  override postprocess(output: Tensors): { y: number[] } {
    const y = [...(output.y!.data as Float32Array)];
    if (y[0]! > 1000) {
      throw new Error('y is too large to report');
    }
    return { y };
  }
}
`;
const THROW_LINE = 13; // the `throw new Error` line above

function project(handler = HANDLER, config?: string) {
  const dir = tempDir();
  const configArgs = config === undefined ? [] : ['-c', 'model-config.yaml'];
  if (config !== undefined) writeFileSync(join(dir, 'model-config.yaml'), config);
  writeModel(dir, 'linear.onnx', linearModel());
  writeFileSync(join(dir, 'handler.ts'), handler);
  writeFileSync(join(dir, 'a.json'), JSON.stringify({ row: [1, 2, 3, 4] }));
  writeFileSync(join(dir, 'b.json'), JSON.stringify({ row: [0, -1, 0.5, 2] }));
  writeFileSync(join(dir, 'huge.json'), JSON.stringify({ row: [1000, 0, 0, 0] }));
  writeFileSync(join(dir, 'bad.json'), JSON.stringify({ nope: true }));
  const run = kiln(
    ['archive', '--model-name', 'linear', '-v', '1', '--serialized-file', 'linear.onnx', '--handler', 'handler.ts', ...configArgs],
    {
      cwd: dir,
    },
  );
  expect(run.stderr).not.toContain('error');
  return dir;
}

describe('kiln predict', () => {
  test('answers each input through the archive, with outputs computed by the model', () => {
    const dir = project();
    const run = kiln(['predict', 'linear.mar', 'a.json', 'b.json'], { cwd: dir });
    expect(run.status).toBe(0);
    const y = (row: number[]) => linearExpected(row).map(Math.fround);
    expect(run.stdout).toContain(`== a.json: 200\n${JSON.stringify({ y: y([1, 2, 3, 4]) }, null, 2)}`);
    expect(run.stdout).toContain(`== b.json: 200\n${JSON.stringify({ y: y([0, -1, 0.5, 2]) }, null, 2)}`);
  });

  test('--batch --json: one batch, per-input results, a failure isolated to its input', () => {
    const dir = project();
    const run = kiln(['predict', 'linear.mar', 'a.json', 'bad.json', 'b.json', '--batch', '--json'], { cwd: dir });
    expect(run.status).toBe(1);
    const results = JSON.parse(run.stdout);
    expect(results.map((r: { ok: boolean }) => r.ok)).toEqual([true, false, true]);
    expect(results[0].body).toEqual({ y: linearExpected([1, 2, 3, 4]).map(Math.fround) });
    expect(results[1]).toMatchObject({
      input: 'bad.json',
      status: 400,
      error: { code: 'KILN_ERR_BAD_REQUEST', message: 'send {"row": [4 numbers]}' },
    });
    expect(run.stderr).toContain('KILN_ERR_PREDICTION_FAILED: 1 of 3 inputs failed: bad.json');
  });

  test('a handler that throws: the message and a stack trace pointing at the .ts line', () => {
    const dir = project();
    const run = kiln(['predict', 'linear.mar', 'huge.json'], { cwd: dir });
    expect(run.status).toBe(1);
    expect(run.stdout).toContain('== huge.json: 500 KILN_ERR_HANDLER_FAILED (in postprocess)');
    expect(run.stdout).toContain('postprocess failed: y is too large to report');
    expect(run.stdout).toMatch(new RegExp(`handler\\.ts:${THROW_LINE}:\\d+`));
  });

  test('a handler whose initialize throws: KILN_ERR_HANDLER_LOAD with the .ts line', () => {
    const failing = `export default class Broken {
  async initialize(): Promise<void> {
    throw new Error('cannot find the vocabulary');
  }
  handle(): never[] {
    return [];
  }
}
`;
    const dir = project(failing);
    const run = kiln(['predict', 'linear.mar', 'a.json'], { cwd: dir });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('error KILN_ERR_HANDLER_LOAD: model "linear" version 1: initialize() failed: cannot find the vocabulary');
    expect(run.stderr).toMatch(/handler\.ts:3:\d+/);
  });

  test('reads every archive format, and refuses a tampered one', () => {
    const dir = project();
    for (const format of ['tgz', 'no-archive']) {
      expect(
        kiln(
          [
            'archive',
            '--model-name',
            'linear',
            '-v',
            '1',
            '--serialized-file',
            'linear.onnx',
            '--handler',
            'handler.ts',
            '--archive-format',
            format,
          ],
          { cwd: dir },
        ).status,
      ).toBe(0);
    }
    for (const archive of ['linear.tar.gz', 'linear']) {
      const run = kiln(['predict', archive, 'a.json'], { cwd: dir });
      expect(run.status).toBe(0);
      expect(run.stdout).toContain('== a.json: 200');
    }
    writeFileSync(join(dir, 'linear/handler.mjs'), 'export default {}');
    const tampered = kiln(['predict', 'linear', 'a.json'], { cwd: dir });
    expect(tampered.status).toBe(1);
    expect(tampered.stderr).toContain('KILN_ERR_ARCHIVE_INTEGRITY');
    expect(tampered.stderr).toContain('handler.mjs: size mismatch');
  });

  test('a missing input file is named', () => {
    const dir = project();
    const run = kiln(['predict', 'linear.mar', 'missing.json'], { cwd: dir });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('KILN_ERR_FILE_NOT_FOUND');
    expect(run.stderr).toContain('missing.json');
  });

  // This machine has no GPU, and onnxruntime-node is installed without its CUDA provider.
  test('a model that asks for the GPU runs on the CPU with one warning naming the missing library and the fix', () => {
    const dir = project(HANDLER, 'deviceType: gpu\n');
    const run = kiln(['predict', 'linear.mar', 'a.json'], { cwd: dir });
    expect(run.status).toBe(0);
    expect(run.stdout).toContain(`== a.json: 200\n${JSON.stringify({ y: linearExpected([1, 2, 3, 4]).map(Math.fround) }, null, 2)}`);
    const warnings = run.stderr.split('\n').filter((line) => line.startsWith('[warn]'));
    expect(warnings).toEqual([
      expect.stringMatching(
        /^\[warn\] model "linear" runs on the CPU: none of the execution providers it asks for \(cuda\) loads on this machine\. cuda: onnxruntime-node was installed without its CUDA provider \(libonnxruntime_providers_shared\.so is missing\) \(fix: run `npm run install:gpu`/,
      ),
    ]);
    // ONNX Runtime's own red error never reaches the terminal.
    expect(run.stderr).not.toMatch(/\[E:onnxruntime|provider_bridge_ort|Failed to load library/);
  });

  test('fallback: false: KILN_ERR_PROVIDER_UNAVAILABLE, naming what is missing, and no prediction', () => {
    const dir = project(HANDLER, 'deviceType: gpu\nfallback: false\n');
    const run = kiln(['predict', 'linear.mar', 'a.json'], { cwd: dir });
    expect(run.status).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain(
      'error KILN_ERR_PROVIDER_UNAVAILABLE: model "linear" asks for cuda with fallback: false, and none of them loads on this machine. cuda: onnxruntime-node was installed without its CUDA provider',
    );
    expect(run.stderr).not.toMatch(/\[E:onnxruntime|provider_bridge_ort/);
  });
});
