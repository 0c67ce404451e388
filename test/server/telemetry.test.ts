import { describe, expect, test } from 'vitest';
import { tempDir } from '../support/kiln.js';
import { linearArchive, post, startKiln } from '../support/server.js';

describe("ONNX Runtime's telemetry", () => {
  test.each(['thread', 'process'])('is off in %s workers unless the user turned it on', async (isolation) => {
    const dir = tempDir();
    linearArchive(dir, 'env-probe', `isolation: ${isolation}\n`, 'probe');
    const quiet = await startKiln(['--model-store', 'store', '--models', 'probe=probe.mar'], { cwd: dir });
    expect((await post(`${quiet.inference}/predictions/probe`, { row: [1, 2, 3, 4] })).json).toMatchObject({ telemetry: '1' });
    await quiet.stop();
    // A user who wants it says so, and is obeyed.
    const chosen = await startKiln(['--model-store', 'store', '--models', 'probe=probe.mar'], {
      cwd: dir,
      env: { ORT_DISABLE_TELEMETRY: '0' },
    });
    expect((await post(`${chosen.inference}/predictions/probe`, { row: [1, 2, 3, 4] })).json).toMatchObject({ telemetry: '0' });
  });
});
