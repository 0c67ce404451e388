import { fileURLToPath } from 'node:url';
import { runHandler } from '@kiln/handler-sdk/testing';
import { describe, expect, it } from 'vitest';
import WordsHandler from './handler.js';

const example = fileURLToPath(new URL('../example/request.json', import.meta.url));

describe('WordsHandler', () => {
  it('answers the example request', async () => {
    const [result] = await runHandler(WordsHandler, [{ file: example }]);
    expect(result).toMatchObject({ ok: true, status: 200 });
    expect(result!.json).toEqual({
      greeting: 'Hello',
      words: 2,
      upper: 'HELLO KILN',
      reversed: 'nliK olleH',
    });
  });

  it('fails only the bad requests of a batch, each with a 400 that says why', async () => {
    const results = await runHandler(WordsHandler, [
      { json: { text: '  two   words ' } },
      { json: { txt: 'a typo in the key' } },
      { body: 'not json', contentType: 'text/plain' },
      { json: { text: 'ok 👋' } },
    ]);
    expect(results.map((r) => r.status)).toEqual([200, 400, 400, 200]);
    expect(results[0]!.json).toMatchObject({ words: 2, reversed: ' sdrow   owt  ' });
    expect(results[1]!.error).toMatchObject({
      code: 'KILN_ERR_BAD_REQUEST',
      message: expect.stringContaining('{"txt":"a typo in the key"}'),
    });
    expect(results[2]!.error?.message).toContain('received text/plain');
    expect(results[3]!.json).toMatchObject({ words: 2, upper: 'OK 👋', reversed: '👋 ko' });
  });

  it('reads the greeting from the handler: section of model-config.yaml', async () => {
    const [result] = await runHandler(WordsHandler, [{ json: { text: 'hi' } }], { config: { handler: { greeting: 'Good morning' } } });
    expect(result!.json).toMatchObject({ greeting: 'Good morning', words: 1 });
  });

  it('refuses to load with a greeting that is not a string', async () => {
    await expect(runHandler(WordsHandler, [{ json: { text: 'hi' } }], { config: { handler: { greeting: 42 } } })).rejects.toThrow(
      'handler.greeting in model-config.yaml must be a string, received 42',
    );
  });
});
