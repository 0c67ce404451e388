// What the soak expects of every request it sends, and the count of what it got. A request is
// "accepted" when it was sent expecting an answer, "answered" when a complete HTTP response came
// back (whatever its status), and "unexpected" when that response is not one its kind allows.
import { linearExpected } from './model.mjs';

/**
 * A 500 KILN_ERR_WORKER_DIED is legitimate for any request that ran on a worker the soak SIGKILLed
 * itself: the message names the worker's pid and says "killed by SIGKILL".
 * @param {import('./http.mjs').Answer} answer @param {Set<number>} killed
 */
function diedOfOurKill(answer, killed) {
  if (answer.status !== 500 || answer.json?.errorCode !== 'KILN_ERR_WORKER_DIED') return false;
  const pid = Number(/\(pid (\d+)\)/.exec(String(answer.json.message))?.[1]);
  return killed.has(pid) && String(answer.json.message).includes('killed by SIGKILL');
}

const hasCode = (answer, status, code) => answer.status === status && answer.json?.errorCode === code;

/**
 * Each kind of request: what it is, what it may get back (the same words go into the report), and
 * the check. `check` returns undefined when the answer is expected, else why not.
 * @type {Record<string, { what: string, expected: string, check: (answer: import('./http.mjs').Answer, context: { killed: Set<number>, row?: number[] }) => string | undefined }>}
 */
export const KINDS = {
  good: {
    what: 'POST /predictions/soak `{"row":[4 small integers]}` from the closed-loop clients',
    expected: '200 with `y` equal to x·W + b; or 500 KILN_ERR_WORKER_DIED naming a worker pid the soak SIGKILLed',
    check: (answer, { killed, row }) => {
      if (answer.status === 200) {
        const want = linearExpected(row);
        const got = answer.json?.y;
        return Array.isArray(got) && got.length === 3 && got.every((v, i) => v === want[i])
          ? undefined
          : `wrong answer for row ${JSON.stringify(row)}: ${answer.text.slice(0, 200)} (expected y ${JSON.stringify(want)})`;
      }
      return diedOfOurKill(answer, killed) ? undefined : 'neither 200 nor the death of a worker the soak killed';
    },
  },
  hang: {
    what: 'POST /predictions/soak `{"row":…,"fault":"hang"}`: the handler sleeps 60 s, past responseTimeout (2 s)',
    expected: '504 KILN_ERR_RESPONSE_TIMEOUT; or 500 KILN_ERR_WORKER_DIED naming a worker pid the soak SIGKILLed',
    check: (answer, { killed }) =>
      hasCode(answer, 504, 'KILN_ERR_RESPONSE_TIMEOUT') || diedOfOurKill(answer, killed) ? undefined : 'not a response timeout',
  },
  exit: {
    what: 'POST /predictions/soak `{"row":…,"fault":"exit"}`: the handler calls process.exit(3) in its worker',
    expected: '500 KILN_ERR_WORKER_DIED saying "exit code 3"; or 500 KILN_ERR_WORKER_DIED naming a worker pid the soak SIGKILLed',
    check: (answer, { killed }) =>
      (hasCode(answer, 500, 'KILN_ERR_WORKER_DIED') && String(answer.json.message).includes('exit code 3')) || diedOfOurKill(answer, killed)
        ? undefined
        : 'not the death of its worker',
  },
  malformed: {
    what: 'POST /predictions/soak with a JSON body cut short (`{"row": [1, 2`), content type application/json',
    expected: '400 KILN_ERR_BAD_REQUEST (the worker parses the body); or 500 KILN_ERR_WORKER_DIED naming a worker pid the soak SIGKILLed',
    check: (answer, { killed }) =>
      hasCode(answer, 400, 'KILN_ERR_BAD_REQUEST') || diedOfOurKill(answer, killed) ? undefined : 'not a bad request',
  },
  unknownModel: {
    what: 'POST /predictions/no-such-model with a good body',
    expected: '404 KILN_ERR_MODEL_NOT_FOUND',
    check: (answer) => (hasCode(answer, 404, 'KILN_ERR_MODEL_NOT_FOUND') ? undefined : 'not a 404 model not found'),
  },
  leftEarly: {
    what: 'a good request that asks the handler for 100 ms (`"fault":"slow"`), whose client closes the connection 5–50 ms after sending it; counted here only when its answer beat the close',
    expected: 'as for a good request',
    check: (answer, context) => KINDS.good.check(answer, context),
  },
  scale: {
    what: 'PUT /models/soak?min_worker=1 or 3, synchronous=true, on the management API',
    expected: '200',
    check: (answer) => (answer.status === 200 ? undefined : 'not 200'),
  },
  describe: {
    what: 'GET /models/soak on the management API (worker pids, recovery checks)',
    expected: '200',
    check: (answer) => (answer.status === 200 ? undefined : 'not 200'),
  },
};

/** Keeps at most this many examples of each problem for the report. */
const EXAMPLES = 20;

/** The count of every request the soak sends, by kind and status. */
export class Ledger {
  constructor() {
    /** Worker pids the soak SIGKILLed, added before the signal is sent. */
    this.killed = new Set();
    /** @type {Map<string, { accepted: number, answered: number, unanswered: number, unexpected: number, statuses: Map<string, number> }>} */
    this.byKind = new Map(
      Object.keys(KINDS).map((kind) => [kind, { accepted: 0, answered: 0, unanswered: 0, unexpected: 0, statuses: new Map() }]),
    );
    /** @type {{ kind: string, detail: string }[]} */
    this.unexpectedExamples = [];
    /** @type {{ kind: string, detail: string }[]} */
    this.unansweredExamples = [];
  }

  /** Call when a request is sent expecting an answer. */
  accept(kind) {
    this.counts(kind).accepted++;
  }

  /**
   * Records how an accepted request ended. Returns true when it was answered as its kind expects.
   * @param {string} kind @param {import('./http.mjs').Answer | import('./http.mjs').NoAnswer} outcome @param {number[]} [row]
   */
  settle(kind, outcome, row) {
    const counts = this.counts(kind);
    if ('error' in outcome) {
      counts.unanswered++;
      this.keep(this.unansweredExamples, kind, `${outcome.error} after ${outcome.ms} ms`);
      return false;
    }
    counts.answered++;
    const status = outcome.json?.errorCode === undefined ? String(outcome.status) : `${outcome.status} ${outcome.json.errorCode}`;
    counts.statuses.set(status, (counts.statuses.get(status) ?? 0) + 1);
    const problem = KINDS[kind].check(outcome, { killed: this.killed, row });
    if (problem === undefined) return true;
    counts.unexpected++;
    this.keep(this.unexpectedExamples, kind, `${status} after ${outcome.ms} ms (${problem}): ${outcome.text.slice(0, 300)}`);
    return false;
  }

  totals() {
    const sum = (field) => [...this.byKind.values()].reduce((n, c) => n + c[field], 0);
    return { accepted: sum('accepted'), answered: sum('answered'), unanswered: sum('unanswered'), unexpected: sum('unexpected') };
  }

  /** Requests sent but neither answered nor given up on yet: must be 0 once the traffic stopped. */
  get inFlight() {
    const t = this.totals();
    return t.accepted - t.answered - t.unanswered;
  }

  counts(kind) {
    const counts = this.byKind.get(kind);
    if (counts === undefined) throw new Error(`unknown request kind ${kind}`);
    return counts;
  }

  keep(list, kind, detail) {
    if (list.length < EXAMPLES) list.push({ kind, detail: `${new Date().toISOString()} ${detail}` });
  }
}
