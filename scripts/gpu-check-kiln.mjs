// The Kiln half of scripts/gpu-check.mjs: `kiln serve` on the check's model with the model config
// of the provider under test, its first answer, the provider it really runs on (from describe and
// from /metrics, so that a CPU fallback never passes for the GPU), and its throughput under
// bench/compare's closed-loop load generator, with the mean batch size the server formed meanwhile.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { archiveWithConfig } from '../bench/compare/archive.mjs';
import { freePort, runLoad, start, stop } from '../bench/compare/procs.mjs';

/**
 * @typedef {object} ServeOptions
 * @property {string} root     the checkout whose kiln runs
 * @property {string} work     a folder for the archive, and the server's working folder
 * @property {import('../bench/compare/contestants.mjs').Model} model   from bench/compare's prepare()
 * @property {string} label    names the archive's folder (the provider)
 * @property {string[]} config model-config.yaml, a line an item
 * @property {{ warmupS: number, kilnS: number, concurrency: number, loadProcesses: number }} settings
 * @property {(text: string) => void} log
 */

/** Archives and serves the model, waits for its first answer, then loads it. The server is stopped whatever happens. */
export async function serveAndLoad(/** @type {ServeOptions} */ { root, work, model, label, config, settings, log }) {
  const mar = archiveWithConfig(root, model, `${config.join('\n')}\n`, join(work, `mar-${label}`));
  const ports = { inference: await freePort(), management: await freePort(), metrics: await freePort() };
  const url = (port) => `http://127.0.0.1:${port}`;
  const inferUrl = `${url(ports.inference)}/v2/models/${model.key}/infer`;
  const t0 = performance.now();
  const server = start(
    process.execPath,
    [join(root, 'packages/cli/bin/kiln.js'), 'serve', '--models', `${model.key}=${mar}`, '--no-snapshot', '--log-format', 'json']
      .concat(['--inference-address', url(ports.inference), '--management-address', url(ports.management)])
      .concat(['--metrics-address', url(ports.metrics), '--grpc-address', 'off'])
      .concat(['--ts-grpc-inference-address', 'off', '--ts-grpc-management-address', 'off']),
    { cwd: work },
  );
  // The inference API listens first; the management and metrics APIs can take a moment longer.
  const describe = async () => (await (await fetchWhenUp(`${url(ports.management)}/models/${model.key}`)).json())[0];
  const metrics = async () => (await fetchWhenUp(`${url(ports.metrics)}/metrics`)).text();
  try {
    const answer = await firstAnswer(server, inferUrl, model);
    const startS = (performance.now() - t0) / 1000;
    log(`first answer ${startS.toFixed(1)} s after the start`);

    const described = await describe();
    const inUse = {
      deviceType: described.deviceType,
      executionProviders: described.executionProviders,
      workers: described.workers.map((w) => w.executionProvider),
    };
    const gauge = /^kiln_model_execution_provider\{([^}]*)\}\s+1\s*$/m.exec(await metrics())?.[1] ?? '';
    const label = (name) => new RegExp(`${name}="([^"]*)"`).exec(gauge)?.[1] ?? null;
    const fromMetrics = { provider: label('provider'), device: label('device') };
    log(`describe: deviceType ${inUse.deviceType}, executionProviders [${inUse.executionProviders}], workers on [${inUse.workers}]`);
    log(`metrics: kiln_model_execution_provider{provider="${fromMetrics.provider}", device="${fromMetrics.device}"} 1`);

    const body = { url: inferUrl, bodyFile: model.bodies.kiln.file, headers: model.bodies.kiln.headers };
    await runLoad({ ...body, concurrency: settings.concurrency, durationS: settings.warmupS });
    const before = batchSums(await metrics());
    // Several client processes on a machine with the cores for them, so that the client is not what is measured.
    const share = Math.ceil(settings.concurrency / settings.loadProcesses);
    const loading = Promise.all(
      Array.from({ length: settings.loadProcesses }, () => runLoad({ ...body, concurrency: share, durationS: settings.kilnS })),
    );
    // Halfway through the window, what nvidia-smi says of the GPUs, as /metrics and describe report it.
    await new Promise((resolve) => setTimeout(resolve, (settings.kilnS * 1000) / 2));
    const gpus = gpuGauges(await metrics());
    const gpuUsage = (await describe()).workers.map((w) => w.gpuUsage);
    const loads = await loading;
    const after = batchSums(await metrics());
    const errors = {};
    for (const l of loads) for (const [k, v] of Object.entries(l.errors)) errors[k] = (errors[k] ?? 0) + v;
    const batches = after.count - before.count;
    const result = {
      startS,
      inUse,
      fromMetrics,
      concurrency: share * settings.loadProcesses,
      loadProcesses: settings.loadProcesses,
      seconds: settings.kilnS,
      requests: loads.reduce((s, l) => s + l.requests, 0),
      errors,
      imagesPerS: loads.reduce((s, l) => s + l.rps, 0),
      p50Ms: Math.max(...loads.map((l) => l.p50 ?? NaN)),
      p99Ms: Math.max(...loads.map((l) => l.p99 ?? NaN)),
      meanBatchSize: batches > 0 ? (after.sum - before.sum) / batches : null,
      batches,
      gpus,
      gpuUsage,
    };
    const failed = Object.keys(errors).length > 0 ? `, failed: ${JSON.stringify(errors)}` : '';
    log(
      `c=${result.concurrency} (${settings.loadProcesses} client process${settings.loadProcesses > 1 ? 'es' : ''}), ${settings.kilnS} s: ` +
        `${result.imagesPerS.toFixed(1)} images/s, p50 ${result.p50Ms.toFixed(1)} ms, p99 ${result.p99Ms.toFixed(1)} ms, ` +
        `mean batch ${result.meanBatchSize?.toFixed(2) ?? 'n/a'} over ${batches} batches${failed}`,
    );
    log(
      gpus.length === 0
        ? 'GPUs mid-window: none in /metrics (nvidia-smi lists no GPU here)'
        : `GPUs mid-window (/metrics, from nvidia-smi): ${gpus.map((g) => `GPU ${g.gpu} ${(100 * g.utilization).toFixed(0)}% busy, ${(g.memoryUsedBytes / 2 ** 30).toFixed(1)} GiB used`).join('; ')}`,
    );
    log(`describe's gpuUsage mid-window: ${gpuUsage.join('; ')}`);
    return { answer, ...result };
  } finally {
    await stop(server);
  }
}

/** Polls with the real request until a 200, as a client would; a model that failed to load ends the wait at once. */
async function firstAnswer(server, inferUrl, model) {
  const payload = readFileSync(model.bodies.kiln.file);
  const start = performance.now();
  for (let attempt = 0; ; attempt++) {
    if (server.exitCode !== null || server.signalCode !== null) throw new Error(`kiln serve exited while starting:\n${server.output()}`);
    if (performance.now() - start > 240_000) throw new Error(`kiln serve gave no 200 within 240 s:\n${server.output()}`);
    const res = await fetch(inferUrl, { method: 'POST', body: payload, headers: model.bodies.kiln.headers }).catch(() => undefined);
    if (res?.status === 200) {
      const bytes = Buffer.from(await res.arrayBuffer());
      const headerLength = Number(res.headers.get('inference-header-content-length'));
      const header = JSON.parse(bytes.subarray(0, headerLength).toString());
      const size = header.outputs[0].parameters.binary_data_size;
      return new Float32Array(new Uint8Array(bytes.subarray(headerLength, headerLength + size)).buffer);
    }
    const text = res ? await res.text() : '';
    if (res && res.status !== 404 && res.status !== 503) throw new Error(`kiln serve answered ${res.status}: ${text.slice(0, 400)}`);
    // /ping names each model that failed to load (fallback: false and no GPU provider, say); waiting will not help.
    if (res && attempt % 10 === 9) {
      const ping = await fetch(new URL('/ping', inferUrl))
        .then((r) => r.json())
        .catch(() => ({}));
      const failed = (ping.problems ?? []).filter((p) => !/still loading/.test(p));
      if (failed.length > 0) throw new Error(`the model did not load: ${failed.join('; ')}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** GET, retried while the connection is refused (for up to 30 s). */
async function fetchWhenUp(target) {
  const until = performance.now() + 30_000;
  for (;;) {
    try {
      return await fetch(target);
    } catch (error) {
      if (error.cause?.code !== 'ECONNREFUSED' || performance.now() > until) throw error;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** kiln_batch_size's _sum and _count, over every series. */
function batchSums(text) {
  const total = (name) =>
    text
      .split('\n')
      .filter((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`))
      .reduce((s, l) => s + Number(l.trim().split(/\s+/).at(-1)), 0);
  return { sum: total('kiln_batch_size_sum'), count: total('kiln_batch_size_count') };
}

/** kiln_gpu_utilization_ratio and kiln_gpu_memory_used_bytes, by GPU, from a /metrics text. */
function gpuGauges(text) {
  const read = (family) =>
    new Map([...text.matchAll(new RegExp(`^${family}\\{gpu="(\\d+)"[^}]*\\}\\s+(\\S+)$`, 'gm'))].map((m) => [m[1], Number(m[2])]));
  const utilization = read('kiln_gpu_utilization_ratio');
  const used = read('kiln_gpu_memory_used_bytes');
  return [...used.keys()].map((gpu) => ({ gpu: Number(gpu), utilization: utilization.get(gpu) ?? NaN, memoryUsedBytes: used.get(gpu) }));
}
