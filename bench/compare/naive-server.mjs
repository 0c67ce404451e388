// The server a user would write in 30 lines instead of installing Kiln: one fastify app, one ONNX
// Runtime session, batch 1, raw float32 bytes in and out. No batching, no workers, no validation
// beyond the body size. It is the baseline Kiln has to be worth its weight against.
//
//   node bench/compare/naive-server.mjs MODEL.onnx PORT THREADS DIM,DIM,DIM
import Fastify from 'fastify';
import * as ort from 'onnxruntime-node';

const [model, port, threads, dims] = process.argv.slice(2);
const shape = [1, ...dims.split(',').map(Number)];
const session = await ort.InferenceSession.create(model, {
  intraOpNumThreads: Number(threads),
  interOpNumThreads: 1,
  graphOptimizationLevel: 'all',
});
const [input] = session.inputNames;
const [output] = session.outputNames;

const app = Fastify({ bodyLimit: 16 * 1024 * 1024 });
app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
app.post('/infer', async (request, reply) => {
  const body = /** @type {Buffer} */ (request.body);
  // A Float32Array view needs a 4-byte aligned offset; copy only when the Buffer is not.
  const floats =
    body.byteOffset % 4 === 0
      ? new Float32Array(body.buffer, body.byteOffset, body.length / 4)
      : new Float32Array(new Uint8Array(body).buffer);
  const results = await session.run({ [input]: new ort.Tensor('float32', floats, shape) });
  const out = /** @type {Float32Array} */ (results[output].data);
  return reply.type('application/octet-stream').send(Buffer.from(out.buffer, out.byteOffset, out.byteLength));
});
await app.listen({ host: '127.0.0.1', port: Number(port) });
