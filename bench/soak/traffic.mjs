// The soak's traffic: closed-loop clients sending good requests, and two lanes of faults, one
// at the workers (SIGKILL, hang, exit, scaling) and one from clients (disconnects, bad requests).
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { send, sendAndLeave, sendHalfBody } from './http.mjs';

/** Faults, in the order the report lists them; `how` goes into the report. */
export const FAULTS = {
  kill: 'SIGKILL to a READY worker process (pid from GET /models/soak)',
  hang: 'a request whose handler sleeps past responseTimeout: counted when answered 504',
  exit: 'a request whose handler calls process.exit(3): counted when answered 500 "exit code 3"',
  scaleUp: 'PUT min_worker=3, then 3 READY workers',
  scaleDown: 'PUT min_worker=1, then 1 READY worker',
  scaleDuringRestart:
    'SIGKILL to a worker, then, once the server has seen it die and while its restart waits (250 ms), PUT min_worker=3 (from 1) or 1 (from 3): counted when the PUT went out within 200 ms of the death being seen',
  clientAbort: 'a client that closes its connection 5–50 ms into a 100 ms request: counted when it left before the answer',
  halfBody: 'a raw connection that sends the headers and half the body, then closes 5–50 ms later',
  malformed: 'a JSON body cut short: counted when answered 400',
  unknownModel: 'a request for a model that does not exist: counted when answered 404',
};

/**
 * The worker-fault lane's cycle: every kind comes early, so a 20 s run sees each at least once;
 * each of kill, hang and exit hits both 3 workers and 1 (where a hang holds up every request), and
 * scaleDuringRestart scales both up (1 → 3) and down (3 → 1).
 */
const WORKER_CYCLE = ['scaleUp', 'kill', 'hang', 'exit', 'scaleDown', 'scaleDuringRestart', 'kill', 'hang', 'exit', 'scaleDuringRestart'];
const CLIENT_CYCLE = ['clientAbort', 'malformed', 'halfBody', 'unknownModel'];
/** How long a pool may take to be back to its target of READY workers after a fault. */
export const RECOVERY_LIMIT_MS = 15_000;
/** How long the pool must stay at its target to count as back: longer than its first restart delay (250 ms). */
const STEADY_MS = 600;
/** How long the server may take to notice that a worker it was sent SIGKILL died. */
const NOTICE_LIMIT_MS = 10_000;
/** The pool's first restart waits 250 ms: a scale sent sooner after the death lands during it. */
const RESTART_WINDOW_MS = 200;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Park–Miller: the same seed gives the same rows, timings and choice of worker. */
export function random(seed) {
  let s = seed % 2147483647 || 1;
  return () => {
    s = (s * 16807) % 2147483647;
    return (s - 1) / 2147483646;
  };
}

/**
 * Everything the traffic shares: the server's addresses, the ledger, the fault counts and the
 * keep-alive agent of the clients (replaced by `closeConnections`).
 */
export class Traffic {
  /**
   * @param {{ server: import('./server.mjs').RunningServer, model: string, ledger: import('./ledger.mjs').Ledger, seed: number, clients: number }} options
   */
  constructor(options) {
    Object.assign(this, options);
    this.rand = random(options.seed);
    this.agent = new http.Agent({ keepAlive: true });
    /** @type {Map<string, { tried: number, done: number }>} */
    this.faults = new Map(Object.keys(FAULTS).map((kind) => [kind, { tried: 0, done: 0 }]));
    this.target = 1;
    this.workerStep = 0;
    this.clientStep = 0;
    /** Each wait for the pool to be back at its target: how long it took. */
    this.recoveries = [];
    /** Broken invariants other than statuses: a pool that did not come back, a kill that found no worker. */
    this.problems = [];
    this.stopAt = 0;
  }

  get predictUrl() {
    return `${this.server.inference}/predictions/${this.model}`;
  }

  /** Runs clients and fault lanes until `ms` from now; resolves when each has finished what it was doing. */
  async run(ms) {
    this.stopAt = Date.now() + ms;
    const clients = Array.from({ length: this.clients }, () => this.goodClient());
    await Promise.all([...clients, this.workerFaultLane(), this.clientFaultLane()]);
  }

  get running() {
    return Date.now() < this.stopAt;
  }

  /** Closes the clients' idle keep-alive connections, so the server's open files can be counted. */
  closeConnections() {
    this.agent.destroy();
    this.agent = new http.Agent({ keepAlive: true });
  }

  /** A row of 4 small integers: x·W + b is then exact in float32. */
  row() {
    return Array.from({ length: 4 }, () => Math.floor(this.rand() * 17) - 8);
  }

  /** One accepted request of `kind`, sent and settled in the ledger. */
  async request(kind, url, options = {}, row = undefined) {
    this.ledger.accept(kind);
    const answer = await send(url, { agent: this.agent, ...options });
    return { answer, ok: this.ledger.settle(kind, answer, row) };
  }

  postJson(kind, url, body, row) {
    return this.request(kind, url, { method: 'POST', body, headers: { 'content-type': 'application/json' } }, row);
  }

  async goodClient() {
    while (this.running) {
      const row = this.row();
      await this.postJson('good', this.predictUrl, JSON.stringify({ row }), row);
    }
  }

  async workerFaultLane() {
    while (this.running) {
      const kind = WORKER_CYCLE[this.workerStep++ % WORKER_CYCLE.length];
      await this[kind]();
      await this.awaitPool(`after ${kind}`);
      await sleep(250);
    }
  }

  async clientFaultLane() {
    while (this.running) {
      const kind = CLIENT_CYCLE[this.clientStep++ % CLIENT_CYCLE.length];
      await this[kind]();
      await sleep(150 + this.rand() * 100);
    }
  }

  fault(kind, done) {
    const counts = this.faults.get(kind);
    counts.tried++;
    if (done) counts.done++;
  }

  /** The model's description from the management API, or undefined when it could not be read. */
  async describe() {
    const { answer, ok } = await this.request('describe', `${this.server.management}/models/${this.model}`);
    return ok ? answer.json?.[0] : undefined;
  }

  async kill() {
    const pid = await this.killOne('kill');
    this.fault('kill', pid !== undefined);
    if (pid !== undefined) await this.awaitGone(pid);
  }

  /** A worker dies and, while its restart waits, the model is scaled: the pool must end at the new target, no more. */
  async scaleDuringRestart() {
    const pid = await this.killOne('scaleDuringRestart');
    const seenAt = pid === undefined ? undefined : await this.awaitGone(pid);
    if (seenAt === undefined) return this.fault('scaleDuringRestart', false);
    const inWindow = performance.now() - seenAt < RESTART_WINDOW_MS;
    const scaled = await this.scale(this.target === 1 ? 3 : 1);
    this.fault('scaleDuringRestart', inWindow && scaled.sent);
  }

  /** Sends SIGKILL to one READY worker process of the server, chosen at random; returns its pid, if it did. */
  async killOne(why) {
    const ready = ((await this.describe())?.workers ?? []).filter((w) => w.status === 'READY' && isChildOf(w.pid, this.server.pid));
    if (ready.length === 0) {
      this.problems.push(`${new Date().toISOString()} ${why}: no READY worker process of the server to kill`);
      return undefined;
    }
    const { pid } = ready[Math.floor(this.rand() * ready.length)];
    this.ledger.killed.add(pid);
    try {
      process.kill(pid, 'SIGKILL');
      return pid;
    } catch {
      return undefined; // it ended meanwhile
    }
  }

  /** Waits until the server no longer lists worker `pid`: it has seen it die. Returns when, or undefined. */
  async awaitGone(pid) {
    const started = performance.now();
    while (performance.now() - started < NOTICE_LIMIT_MS) {
      const described = await this.describe();
      if (described !== undefined && !described.workers.some((w) => w.pid === pid)) return performance.now();
      await sleep(10);
    }
    this.problems.push(
      `${new Date().toISOString()} the server still listed worker pid ${pid} ${NOTICE_LIMIT_MS / 1000} s after its SIGKILL`,
    );
    return undefined;
  }

  async hang() {
    const { answer } = await this.postJson('hang', this.predictUrl, JSON.stringify({ row: this.row(), fault: 'hang' }));
    this.fault('hang', answer.status === 504);
  }

  async exit() {
    const { answer } = await this.postJson('exit', this.predictUrl, JSON.stringify({ row: this.row(), fault: 'exit' }));
    this.fault('exit', answer.status === 500 && String(answer.json?.message).includes('exit code 3'));
  }

  async scaleUp() {
    const { sent, back } = await this.scale(3);
    this.fault('scaleUp', sent && back);
  }

  async scaleDown() {
    const { sent, back } = await this.scale(1);
    this.fault('scaleDown', sent && back);
  }

  /**
   * Scales the model synchronously and waits for exactly `workers` READY workers. `sent`: the PUT
   * was answered 200; `back`: the pool then came to the target. When it did not, the PUT is sent
   * once more, so the soak goes on from a pool of the right size.
   */
  async scale(workers) {
    this.target = workers;
    const url = `${this.server.management}/models/${this.model}?min_worker=${workers}&synchronous=true`;
    const { ok: sent } = await this.request('scale', url, { method: 'PUT' });
    const back = sent && (await this.awaitPool(`after scaling to ${workers}`));
    if (sent && !back) {
      await this.request('scale', url, { method: 'PUT' });
      await this.awaitPool(`after scaling to ${workers} again`);
    }
    return { sent, back };
  }

  /**
   * Waits until the model is ready with exactly `target` workers, all READY, and still is
   * STEADY_MS later (a restart that was waiting when a scale answered shows up by then): after a
   * fault, the pool must come back to what it was asked to run, no fewer and no more.
   */
  async awaitPool(when) {
    const started = performance.now();
    const atTarget = (described) =>
      described?.status === 'ready' && described.workers.length === this.target && described.workers.every((w) => w.status === 'READY');
    let last;
    while (performance.now() - started < RECOVERY_LIMIT_MS) {
      last = await this.describe();
      if (atTarget(last)) {
        const reached = performance.now() - started;
        await sleep(STEADY_MS);
        last = await this.describe();
        if (atTarget(last)) {
          this.recoveries.push(reached);
          return true;
        }
      }
      await sleep(100);
    }
    const seen =
      last === undefined
        ? 'no description'
        : `status ${last.status}, minWorkers ${last.minWorkers}, workers ${JSON.stringify(last.workers?.map((w) => `${w.id} pid ${w.pid} ${w.status}`))}`;
    this.problems.push(
      `${new Date().toISOString()} ${when}: the pool was not back at ${this.target} READY workers within ${RECOVERY_LIMIT_MS / 1000} s (${seen})`,
    );
    return false;
  }

  async clientAbort() {
    const row = this.row();
    const body = JSON.stringify({ row, fault: 'slow', delayMs: 100 });
    const outcome = await sendAndLeave(this.predictUrl, body, 5 + this.rand() * 45);
    if ('cut' in outcome) return this.fault('clientAbort', true);
    // The answer beat the close: it is checked as a good request would be.
    this.fault('clientAbort', false);
    this.ledger.accept('leftEarly');
    this.ledger.settle('leftEarly', outcome, row);
  }

  async halfBody() {
    const body = JSON.stringify({ row: this.row() });
    this.fault('halfBody', await sendHalfBody(this.server.inference, `/predictions/${this.model}`, body, 5 + this.rand() * 45));
  }

  async malformed() {
    const { answer } = await this.postJson('malformed', this.predictUrl, '{"row": [1, 2');
    this.fault('malformed', answer.status === 400);
  }

  async unknownModel() {
    const { answer } = await this.postJson(
      'unknownModel',
      `${this.server.inference}/predictions/no-such-model`,
      JSON.stringify({ row: this.row() }),
    );
    this.fault('unknownModel', answer.status === 404);
  }
}

/** Whether `pid` is a child of `parent` now: the soak only ever signals the server's own workers. */
function isChildOf(pid, parent) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === parent;
  } catch {
    return false;
  }
}
