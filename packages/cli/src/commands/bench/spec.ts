import type { CommandSpec } from '../../command-spec.js';
import { BENCH_PROTOCOLS } from './report-types.js';

export const benchCommand: CommandSpec = {
  name: 'bench',
  summary: 'Load-test a model: throughput and latency by concurrency, with the server-side breakdown',
  description:
    "Sends the same request over and over from closed-loop clients (each sends its next request when the last is answered) at each concurrency level: a warm-up whose answers are not counted, then a measured window. Reports throughput, latency percentiles and errors by status, and, from the server's /metrics, batch sizes, queue time and each handler phase. The target is a running server's inference URL (with --model), or an archive, which kiln bench serves itself on free loopback ports with the server's defaults. The load runs in a thread of its own. Exits 1 when every request of a level failed.",
  arguments: [{ name: '<target>', description: 'A server URL (http://127.0.0.1:8080) or an archive (.mar, .tar.gz or folder)' }],
  options: [
    { flags: '-m, --model <name>', description: 'The model to load (required with a URL; an archive names its own)' },
    {
      flags: '--protocol <protocol>',
      description: 'How requests are sent: torchserve, KServe v2 JSON or binary over HTTP, or KServe v2 gRPC ModelInfer',
      choices: BENCH_PROTOCOLS,
      default: 'v2-binary',
    },
    {
      flags: '-i, --input <file>',
      description:
        "The request body. torchserve: any file, content type from its extension. v2-json: a KServe v2 JSON request. v2-binary and grpc: a v2 JSON request (sent as binary tensors) or a single input's raw bytes. Default: tensors generated from the model's signature",
    },
    {
      flags: '--shape <shapes...>',
      description: 'Shapes for generated inputs with open dimensions, NAME=DIMS (e.g. x=1,3,224,224); open dimensions default to 1',
    },
    {
      flags: '--grpc-address <host:port>',
      description:
        "With --protocol grpc and a URL: the server's KServe v2 gRPC address (default: the URL's host, port 8085). An archive is served with gRPC on a free port",
    },
    { flags: '-c, --concurrency <list>', description: 'Concurrency levels, comma-separated', default: '1,4,16,64' },
    { flags: '-d, --duration <seconds>', description: 'Length of each level’s measured window (default 10)' },
    { flags: '-n, --requests <n>', description: 'Requests per level instead of a duration (each level still stops after 600 s)' },
    { flags: '--warmup <seconds>', description: 'Warm-up before each level; its answers are not counted', default: '2' },
    { flags: '--timeout <ms>', description: 'A request not answered in this time counts as an error', default: '30000' },
    { flags: '-H, --header <headers...>', description: 'Extra request headers, "Name: value" (e.g. "Authorization: Bearer …")' },
    {
      flags: '--metrics-url <url>',
      description: 'Where to read the server-side figures (default, with a URL: port 8082 of its host, /metrics)',
    },
    { flags: '--report <dir>', description: 'Write report.md, report.json and a self-contained report.html there' },
  ],
  load: () => import('./cli.js'),
};
