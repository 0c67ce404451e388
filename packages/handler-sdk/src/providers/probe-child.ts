/*
 * The provider probe's child process (probe.ts starts it): loads onnxruntime-node, lists the
 * execution providers this build knows, and creates a session of a 92-byte Identity model on each
 * one asked for, alone. One JSON line per result on stdout, so that what was learned survives a
 * provider whose native code takes the process down. ONNX Runtime's and Dawn's own complaints land
 * on this child's stderr, where the parent reads the missing library's name from them.
 */
import { IDENTITY_MODEL_BASE64, STDERR_MARK } from './identity-model.js';

process.env.ORT_DISABLE_TELEMETRY ??= '1';
const wanted = new Set((process.argv[2] ?? '').split(',').filter(Boolean));
const write = (line: object) => process.stdout.write(`${JSON.stringify(line)}\n`);

const ort = await import('onnxruntime-node');
const backends = ort.listSupportedBackends();
write({ kind: 'backends', version: ort.env.versions.node ?? ort.env.versions.common, backends });
const model = Buffer.from(IDENTITY_MODEL_BASE64, 'base64');
for (const { name } of backends) {
  if (!wanted.has(name)) continue;
  // What the native code prints from here on is this provider's (stderr to a pipe is synchronous).
  process.stderr.write(`${STDERR_MARK}${name}\n`);
  try {
    const session = await ort.InferenceSession.create(model, { executionProviders: [name], logSeverityLevel: 3 });
    await session.release();
    write({ kind: 'provider', name, loadable: true });
  } catch (error) {
    write({ kind: 'provider', name, loadable: false, error: (error as Error).message.trim().split('\n')[0] });
  }
}
write({ kind: 'done' });
