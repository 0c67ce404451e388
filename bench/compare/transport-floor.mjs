// What the transports themselves cost, with no model and no Kiln: a grpc-js unary call against a
// node:http POST on keep-alive, each carrying the same request bytes to a server in this process that
// answers a small fixed message at once. The gap between the two is the least that gRPC can add to a
// request of this size on this machine; bench/compare/grpc.mjs prints it beside Kiln's own ratios.
//
//   node bench/compare/transport-floor.mjs <request bytes> [answer bytes]   → one line of JSON
import http from 'node:http';
import { createRequire } from 'node:module';

const require = createRequire(new URL('../../packages/server/package.json', import.meta.url));
/** @type {typeof import('@grpc/grpc-js')} */
const grpc = require('@grpc/grpc-js');

const requestBytes = Number(process.argv[2] ?? 1024);
const answer = Buffer.alloc(Number(process.argv[3] ?? 4096));
const body = Buffer.alloc(requestBytes, 1);
const WARMUP = 300;
const COUNT = 1500;

/** @param {Buffer} b */
const same = (b) => b;
const server = new grpc.Server({ 'grpc.max_receive_message_length': 1 << 30 });
server.addService(
  {
    Echo: {
      path: '/floor.Floor/Echo',
      requestStream: false,
      responseStream: false,
      requestSerialize: same,
      requestDeserialize: same,
      responseSerialize: same,
      responseDeserialize: same,
    },
  },
  { Echo: (_call, callback) => callback(null, answer) },
);
const grpcPort = await new Promise((resolve, reject) =>
  server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, port) => (error ? reject(error) : resolve(port))),
);
const client = new grpc.Client(`127.0.0.1:${grpcPort}`, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': 1 << 30 });
const viaGrpc = () =>
  new Promise((resolve, reject) =>
    client.makeUnaryRequest('/floor.Floor/Echo', same, same, body, (error) => (error ? reject(error) : resolve(undefined))),
  );

const httpServer = http.createServer((req, res) => {
  req.on('data', () => {});
  req.on('end', () => res.end(answer));
});
await new Promise((resolve) => httpServer.listen(0, '127.0.0.1', () => resolve(undefined)));
const agent = new http.Agent({ keepAlive: true });
const address = /** @type {import('node:net').AddressInfo} */ (httpServer.address());
const viaHttp = () =>
  new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port: address.port, method: 'POST', agent, headers: { 'content-length': body.length } },
      (res) => {
        res.on('data', () => {});
        res.on('end', () => resolve(undefined));
      },
    );
    req.on('error', reject);
    req.end(body);
  });

/** c=1 p50 in ms of `send`, after a warm-up. */
async function p50(send) {
  for (let i = 0; i < WARMUP; i++) await send();
  const times = [];
  for (let i = 0; i < COUNT; i++) {
    const t = performance.now();
    await send();
    times.push(performance.now() - t);
  }
  return times.sort((a, b) => a - b)[Math.floor(COUNT / 2)];
}

// Alternated, twice each, and the better of each kept: the machine's noise hits both alike.
const grpcRuns = [];
const httpRuns = [];
for (let i = 0; i < 2; i++) {
  grpcRuns.push(await p50(viaGrpc));
  httpRuns.push(await p50(viaHttp));
}
const result = { requestBytes, grpcP50: Math.min(...grpcRuns), httpP50: Math.min(...httpRuns) };
process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(0));
