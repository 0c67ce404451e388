// The soak's HTTP client: node:http with an agent of its own, so the soak decides when its
// connections close (a connection left open is an open file in the server, and the soak counts those).
import http from 'node:http';
import net from 'node:net';

/** No request waits longer than this for its answer; one that does counts as unanswered. */
export const CLIENT_TIMEOUT_MS = 30_000;

/**
 * @typedef {{ status: number, json: any, text: string, ms: number }} Answer
 * @typedef {{ error: string, ms: number }} NoAnswer  the connection failed, or no answer came in time
 */

/**
 * Sends one request and reads the whole answer. Resolves with the answer, or with `{ error }` when
 * the connection fails or no answer comes within CLIENT_TIMEOUT_MS; never rejects.
 * @param {string} url
 * @param {{ method?: string, body?: string, headers?: Record<string, string>, agent?: http.Agent | false, signal?: AbortSignal }} [options]
 * @returns {Promise<Answer | NoAnswer>}
 */
export function send(url, options = {}) {
  const started = performance.now();
  const ms = () => Math.round(performance.now() - started);
  return new Promise((resolve) => {
    const headers = { ...options.headers };
    if (options.body !== undefined) headers['content-length'] = String(Buffer.byteLength(options.body));
    const request = http.request(url, { method: options.method ?? 'GET', headers, agent: options.agent ?? false, signal: options.signal });
    const timer = setTimeout(() => request.destroy(new Error(`no answer within ${CLIENT_TIMEOUT_MS / 1000} s`)), CLIENT_TIMEOUT_MS);
    request.on('error', (error) => {
      clearTimeout(timer);
      resolve({ error: `${error.code ?? 'error'}: ${error.message}`, ms: ms() });
    });
    request.on('response', (response) => {
      const chunks = [];
      response.on('data', (chunk) => chunks.push(chunk));
      response.on('error', () => {}); // the request's 'error' follows
      response.on('end', () => {
        clearTimeout(timer);
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: response.statusCode ?? 0, json: parseJson(text), text, ms: ms() });
      });
    });
    request.end(options.body);
  });
}

/**
 * Sends a request on a connection of its own and leaves (destroys the socket) after `afterMs`:
 * a client that disconnects mid-request. Resolves with `{ cut: true }` when it left before the
 * answer came, or with the answer that beat it.
 * @param {string} url @param {string} body @param {number} afterMs
 * @returns {Promise<{ cut: true } | Answer | NoAnswer>}
 */
export function sendAndLeave(url, body, afterMs) {
  const controller = new AbortController();
  const answer = send(url, {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/json' },
    agent: new http.Agent({ keepAlive: false }),
    signal: controller.signal,
  });
  return new Promise((resolve) => {
    let settled = false;
    const timer = setTimeout(() => {
      settled = true;
      controller.abort();
      resolve({ cut: true });
    }, afterMs);
    void answer.then((result) => {
      clearTimeout(timer);
      if (!settled) resolve(result);
    });
  });
}

/**
 * Opens a raw connection, sends the headers of a JSON POST and half of its body, and closes the
 * connection `afterMs` later. Resolves with whether the half body was written before the close.
 * @param {string} baseUrl @param {string} path @param {string} body @param {number} afterMs
 * @returns {Promise<boolean>}
 */
export function sendHalfBody(baseUrl, path, body, afterMs) {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve) => {
    let written = false;
    const socket = net.connect(Number(port), hostname, () => {
      const head =
        `POST ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n`;
      socket.write(head + body.slice(0, Math.floor(body.length / 2)), () => (written = true));
      setTimeout(() => socket.destroy(), afterMs);
    });
    socket.on('error', () => {});
    socket.on('close', () => resolve(written));
  });
}

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
