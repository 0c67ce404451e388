import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ElemType, LINEAR_W, linearExpected, type ModelSpec } from '../support/onnx-models.js';
import { archiveModel, linearArchive, post, startKiln, type RunningKiln } from '../support/server.js';

// TorchServe's handler hooks and the routes around them: KServe v1 bytes instances, explanations
// (/explanations and v1 :explain), describe (?customized=true) and the API description.

/** Logits = the mean of each channel after ImageNet normalisation: GlobalAveragePool then Flatten, 3 classes. */
const classifier: ModelSpec = {
  inputs: [{ name: 'image', elemType: ElemType.FLOAT, dims: ['batch', 3, 224, 224] }],
  outputs: [{ name: 'logits', elemType: ElemType.FLOAT, dims: ['batch', 3] }],
  nodes: [
    { opType: 'GlobalAveragePool', inputs: ['image'], outputs: ['pooled'] },
    { opType: 'Flatten', inputs: ['pooled'], outputs: ['logits'] },
  ],
};

let kiln: RunningKiln;
let dir: string;
let image: Buffer;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kiln-hooks-'));
  image = await sharp({ create: { width: 300, height: 260, channels: 3, background: { r: 255, g: 0, b: 0 } } })
    .png()
    .toBuffer();
  const explained = linearArchive(dir, 'explainable', 'batchSize: 8\nmaxBatchDelay: 150\n', 'explained');
  const inProcess = linearArchive(dir, 'explainable', 'isolation: process\n', 'explained_proc');
  const linear = linearArchive(dir, 'linear', 'batchSize: 1\n', 'linear');
  const colour = archiveModel(dir, { name: 'colour', model: classifier, handler: 'image_classifier', config: 'batchSize: 4\n' });
  kiln = await startKiln(['--models', `explained=${explained}`, `explained_proc=${inProcess}`, `linear=${linear}`, `colour=${colour}`], {
    shared: true,
  });
});
afterAll(async () => {
  await kiln?.stop('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** The explainable handler's attributions, by hand: input i adds x_i·W_ij to output j. */
const attributions = (row: number[]) => row.map((x, i) => [0, 1, 2].map((j) => x * LINEAR_W[i * 3 + j]!));

function expectClose(actual: unknown, expected: number[][]): void {
  const rows = actual as number[][];
  expect(rows.length).toBe(expected.length);
  rows.forEach((row, i) => row.forEach((value, j) => expect(value).toBeCloseTo(expected[i]![j]!, 5)));
}

describe('KServe v1 instances that carry bytes', () => {
  test('{"data": base64} (TorchServe) and {"b64": base64} (TF Serving) reach an image handler as the raw body does', async () => {
    const raw = await post(`${kiln.inference}/predictions/colour`, image, { 'content-type': 'image/png' });
    expect(raw.status).toBe(200);
    // Independently: a solid image stays solid through resize and crop, so each logit is the
    // ImageNet-normalised channel value, and the answer is softmax over the three.
    const logits = [(1 - 0.485) / 0.229, (0 - 0.456) / 0.224, (0 - 0.406) / 0.225];
    const sum = logits.reduce((s, x) => s + Math.exp(x), 0);
    const answer = raw.json as Record<string, number>;
    expect(Object.keys(answer).sort()).toEqual(['0', '1', '2']);
    logits.forEach((x, i) => expect(answer[String(i)]).toBeCloseTo(Math.exp(x) / sum, 4));

    const base64 = image.toString('base64');
    const v1 = await post(`${kiln.inference}/v1/models/colour:predict`, { instances: [{ data: base64 }, { b64: base64 }] });
    expect(v1.status).toBe(200);
    expect(v1.json).toEqual({ predictions: [answer, answer] });
  });

  test('a "b64" that is not base64 is refused before anything runs; a "data" that is not base64 stays JSON (text)', async () => {
    const bad = await post(`${kiln.inference}/v1/models/colour:predict`, {
      instances: [{ b64: image.toString('base64') }, { b64: 'not base64!' }],
    });
    expect(bad.status).toBe(400);
    expect(bad.json).toEqual({
      error: `instance 1: "b64" must be a base64 string (TF Serving's form for bytes), received "not base64!"`,
      errorCode: 'KILN_ERR_BAD_REQUEST',
    });
    // The linear handler reads JSON: it got {"data": "a, b"} as JSON and says so.
    const text = await post(`${kiln.inference}/v1/models/linear:predict`, { instances: [{ data: 'a, b' }] });
    expect(text.status).toBe(400);
    expect(text.json.error).toBe('instance 0: send {"row": [4 numbers]}, received {"data":"a, b"}');
  });
});

describe('explanations', () => {
  test("POST /explanations/{m}[/{v}] answers what the handler's explain() returns, as it is", async () => {
    const row = [1, 2, 3, 4];
    for (const path of ['/explanations/explained', '/explanations/explained/1.0']) {
      const answer = await post(`${kiln.inference}${path}`, { row });
      expect(answer.status).toBe(200);
      expect(answer.headers.get('content-type')).toBe('application/json; charset=utf-8');
      expectClose(answer.json.attributions, attributions(row));
    }
    // The explanation adds up to the prediction, less the bias: y_j = b_j + sum_i x_i·W_ij.
    const prediction = await post(`${kiln.inference}/predictions/explained`, { row });
    expect(prediction.json.y).toEqual(linearExpected(row).map(Math.fround));
    // A request explain() refuses fails alone, with the handler's status and message.
    const bad = await post(`${kiln.inference}/explanations/explained`, { row: [1] });
    expect(bad.status).toBe(400);
    expect(bad.json).toMatchObject({ message: 'send {"row": [4 numbers]}, received {"row":[1]}', errorCode: 'KILN_ERR_BAD_REQUEST' });
  });

  test('KServe v1 :explain answers {"explanations": [...]}, one per instance, in order', async () => {
    const rows = [
      [1, 0, 0, 0],
      [0.5, -1, 2, 3],
    ];
    const answer = await post(`${kiln.inference}/v1/models/explained:explain`, { instances: rows.map((row) => ({ row })) });
    expect(answer.status).toBe(200);
    const explanations = answer.json.explanations as { attributions: number[][] }[];
    expect(explanations).toHaveLength(2);
    explanations.forEach((e, i) => expectClose(e.attributions, attributions(rows[i]!)));
  });

  test('explain and predict requests share the queue and batches, and each gets its own answer', async () => {
    const rows = Array.from({ length: 6 }, (_, i) => [i, 1, -i, 2]);
    const answers = await Promise.all(
      rows.flatMap((row) => [
        post(`${kiln.inference}/predictions/explained`, { row }),
        post(`${kiln.inference}/explanations/explained`, { row }),
      ]),
    );
    rows.forEach((row, i) => {
      expect(answers[2 * i]!.json.y).toEqual(linearExpected(row).map(Math.fround));
      expectClose(answers[2 * i + 1]!.json.attributions, attributions(row));
    });
    // The explain requests arrived within maxBatchDelay of each other: explain() got them in one call.
    expect(Math.max(...answers.filter((_, i) => i % 2 === 1).map((a) => a.json.batch as number))).toBeGreaterThan(1);
  });

  test('a process worker carries the explain mark and reports its hooks the same way', async () => {
    const row = [2, -1, 0.5, 3];
    const answer = await post(`${kiln.inference}/explanations/explained_proc`, { row });
    expect(answer.status).toBe(200);
    expectClose(answer.json.attributions, attributions(row));
    const described = (await (await fetch(`${kiln.management}/models/explained_proc?customized=true`)).json()) as Record<string, unknown>[];
    expect(described[0]).toMatchObject({ isolation: 'process', customizedMetadata: { inputs: ['x'], modelVersion: '1.0' } });
  });

  test('a handler without explain() is 501 KILN_ERR_NOT_IMPLEMENTED at once, in each route family’s error shape', async () => {
    const message =
      'model "linear" version 1.0 cannot explain: its handler exports no explain() hook; add a method explain(requests, context) to the handler that returns one explanation per request (see docs/reference/handler-sdk.md#explain-and-describe), then archive the model again';
    const torchserve = await post(`${kiln.inference}/explanations/linear`, { row: [1, 2, 3, 4] });
    expect(torchserve.status).toBe(501);
    expect(torchserve.json).toEqual({ code: 501, type: 'NotImplementedException', message, errorCode: 'KILN_ERR_NOT_IMPLEMENTED' });
    const v1 = await post(`${kiln.inference}/v1/models/colour:explain`, { instances: [{ b64: image.toString('base64') }] });
    expect(v1.status).toBe(501);
    expect(v1.json).toEqual({ error: message.replaceAll('"linear"', '"colour"'), errorCode: 'KILN_ERR_NOT_IMPLEMENTED' });
    const other = await post(`${kiln.inference}/v1/models/linear:classify`, { instances: [] });
    expect(other.status).toBe(404);
    expect(other.json.errorCode).toBe('KILN_ERR_ROUTE_NOT_FOUND');
  });
});

describe('describe hook', () => {
  const describeModel = async (path: string) => {
    const response = await fetch(`${kiln.management}${path}`);
    return { status: response.status, json: (await response.json()) as Record<string, unknown>[] };
  };

  test("?customized=true adds customizedMetadata: the handler's describe(), as a JSON object", async () => {
    const expected = { explains: 'x_i * W_ij for each input i and output j', inputs: ['x'], modelVersion: '1.0' };
    for (const path of [
      '/models/explained?customized=true',
      '/models/explained/1.0?customized=true',
      '/models/explained/all?customized=true',
    ]) {
      const answer = await describeModel(path);
      expect(answer.status).toBe(200);
      expect(answer.json).toHaveLength(1);
      expect(answer.json[0]!.modelName).toBe('explained');
      expect(answer.json[0]!.customizedMetadata).toEqual(expected);
    }
    const plain = await describeModel('/models/explained?customized=false');
    expect(plain.status).toBe(200);
    expect('customizedMetadata' in plain.json[0]!).toBe(false);
  });

  test('without describe() the field is left out, as TorchServe leaves it; customized takes true or false only', async () => {
    const answer = await describeModel('/models/linear?customized=true');
    expect(answer.status).toBe(200);
    expect(answer.json[0]!.modelName).toBe('linear');
    expect('customizedMetadata' in answer.json[0]!).toBe(false);
    const bad = await fetch(`${kiln.management}/models/linear?customized=yes`);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { errorCode: string }).errorCode).toBe('KILN_ERR_INVALID_PARAMETER');
    const unknown = await fetch(`${kiln.management}/models/linear?custom=true`);
    expect(unknown.status).toBe(400);
    expect(((await unknown.json()) as { message: string }).message).toBe(
      'query parameter custom is not one this route takes; it takes customized',
    );
  });
});

describe('API description', () => {
  interface OpenApi {
    openapi: string;
    info: { title: string };
    paths: Record<string, Record<string, { parameters?: { name: string; in: string }[] }>>;
  }
  const fetchJson = async (url: string, method = 'GET') => {
    const response = await fetch(url, { method });
    expect(response.status).toBe(200);
    return (await response.json()) as OpenApi;
  };

  test('GET /api-description and OPTIONS / answer the OpenAPI document of each API, as TorchServe does', async () => {
    const inference = await fetchJson(`${kiln.inference}/api-description`);
    expect(inference.openapi).toBe('3.0.3');
    expect(inference.info.title).toBe('Kiln inference API (TorchServe, KServe v2 and v1)');
    expect(Object.keys(inference.paths)).toEqual(
      expect.arrayContaining([
        '/ping',
        '/predictions/{model}',
        '/explanations/{model}',
        '/explanations/{model}/{version}',
        '/v1/models/{target}',
      ]),
    );
    expect(await fetchJson(`${kiln.inference}/`, 'OPTIONS')).toEqual(inference);
    expect(await fetchJson(`${kiln.inference}/api-description`, 'OPTIONS')).toEqual(inference);

    const management = await fetchJson(`${kiln.management}/api-description`);
    expect(management.info.title).toBe('Kiln management API');
    expect(Object.keys(management.paths)).toEqual(
      expect.arrayContaining(['/models', '/models/{model_name}', '/models/{model_name}/{version}']),
    );
    expect(management.paths['/models/{model_name}']!.get!.parameters).toEqual(
      expect.arrayContaining([expect.objectContaining({ name: 'customized', in: 'query' })]),
    );
    expect(await fetchJson(`${kiln.management}/`, 'OPTIONS')).toEqual(management);
  });
});
