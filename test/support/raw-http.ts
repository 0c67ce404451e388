/** HTTP spoken byte by byte over a socket: for bodies too large, too slow, cut short, or not HTTP at all. */
import { connect, type Socket } from 'node:net';

export interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  json: Record<string, unknown>;
  /** The socket error seen while sending, if any (EPIPE, ECONNRESET). */
  error: string | undefined;
  /** Milliseconds from the first byte sent to the answer. */
  ms: number;
}

/**
 * Sends `head` then each piece of `body` (a piece may be a pause in milliseconds), and reads one
 * answer. Resolves when the answer is complete or the socket closes; rejects after `limitMs`.
 */
export function rawExchange(url: string, head: string, body: (Buffer | number)[] = [], limitMs = 15_000): Promise<RawAnswer> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  const started = Date.now();
  let error: string | undefined;
  let received = Buffer.alloc(0);
  socket.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
  const answer = new Promise<RawAnswer>((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer within ${limitMs} ms; received ${JSON.stringify(received.toString().slice(0, 200))}`));
    }, limitMs);
    const finish = () => {
      const parsed = parse(received);
      if (parsed === undefined) return false;
      clearTimeout(timer);
      resolve({ ...parsed, error, ms: Date.now() - started });
      socket.destroy();
      return true;
    };
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      finish();
    });
    socket.on('close', () => {
      if (!finish()) {
        clearTimeout(timer);
        reject(
          new Error(`the connection closed without an answer (${error ?? 'no error'}); received ${JSON.stringify(received.toString())}`),
        );
      }
    });
  });
  void send(socket, head, body);
  return answer;
}

async function send(socket: Socket, head: string, body: (Buffer | number)[]): Promise<void> {
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write(head);
  for (const piece of body) {
    if (socket.destroyed) return;
    if (typeof piece === 'number') await new Promise((resolve) => setTimeout(resolve, piece));
    else if (!socket.write(piece)) await new Promise((resolve) => socket.once('drain', resolve).once('close', resolve));
  }
}

/** One complete answer (Content-Length bodies only), or undefined while it is incomplete. */
function parse(bytes: Buffer): Omit<RawAnswer, 'error' | 'ms'> | undefined {
  const end = bytes.indexOf('\r\n\r\n');
  if (end === -1) return undefined;
  const [statusLine, ...lines] = bytes.subarray(0, end).toString('latin1').split('\r\n');
  const headers = Object.fromEntries(
    lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]),
  );
  const length = Number(headers['content-length'] ?? 0);
  if (bytes.length < end + 4 + length) return undefined;
  const text = bytes.subarray(end + 4, end + 4 + length).toString('utf8');
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // not JSON
  }
  return { status: Number(statusLine!.split(' ')[1]), headers, json };
}

/** `size` bytes in pieces of 64 KiB. */
export function pieces(size: number, fill = 0x20): Buffer[] {
  const piece = Buffer.alloc(64 * 1024, fill);
  return Array.from({ length: Math.ceil(size / piece.length) }, (_, i) =>
    piece.subarray(0, Math.min(piece.length, size - i * piece.length)),
  );
}

/** The same pieces in chunked transfer encoding, with the final empty chunk. */
export function chunked(parts: Buffer[]): Buffer[] {
  return [
    ...parts.map((p) => Buffer.concat([Buffer.from(`${p.length.toString(16)}\r\n`), p, Buffer.from('\r\n')])),
    Buffer.from('0\r\n\r\n'),
  ];
}
