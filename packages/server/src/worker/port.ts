import { Socket, type OnReadOpts, type SocketConstructorOpts } from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';
import type { NativeHooks } from '@kiln/handler-sdk/worker';
import { FrameReader, writeFrame, type ParentMessage, type WorkerBoot, type WorkerMessage } from '../pool/protocol.js';

/** The worker's side of its transport: a thread's parentPort, or a process's framed pipe. */
export interface Port {
  /** Tells the parent this worker's modules are loaded: from now on it may be terminated safely. */
  booted(): void;
  /** Marks native calls for the parent (threads only: see WorkerBoot.flags). */
  nativeHooks: NativeHooks | undefined;
  /** True for a thread: request buffers arrive transferred, and are given back after the batch. */
  lent: boolean;
  /** `transfer`: buffers handed over without a copy (threads only; a pipe copies anyway). */
  send(message: WorkerMessage, transfer?: ArrayBuffer[]): void;
  onMessage(listener: (message: ParentMessage) => void): void;
}

/** Opens the port this worker was started with, from workerData (thread) or --frame-fd (process). */
export function openPort(): Port {
  if (parentPort !== null && (workerData as WorkerBoot | undefined)?.transport === 'thread') {
    const port = parentPort;
    const { flags: buffer } = workerData as WorkerBoot;
    const flags = buffer === undefined ? undefined : new Int32Array(buffer);
    return {
      booted: () => {
        if (flags !== undefined) Atomics.store(flags, 0, 1);
      },
      nativeHooks: flags === undefined ? undefined : { enter: () => Atomics.add(flags, 1, 1), exit: () => Atomics.sub(flags, 1, 1) },
      lent: true,
      send: (message, transfer = []) => port.postMessage(message, transfer),
      onMessage: (listener) => port.on('message', listener),
    };
  }
  const fd = Number(/^--frame-fd=(\d+)$/.exec(process.argv.find((a) => a.startsWith('--frame-fd=')) ?? '')?.[1]);
  if (!Number.isInteger(fd)) throw new Error('the worker entry is started by kiln serve, with a thread or --frame-fd');
  // Each read lands where the frame reader wants it, straight in the frame being read: no buffer
  // per read, and no copy of the tensor after the kernel's. Messages wait in the reader until the
  // worker listens (onMessage).
  const waiting: unknown[] = [];
  let deliver: (message: unknown) => void = (message) => waiting.push(message);
  const reader = new FrameReader((message) => deliver(message));
  // `onread` is taken by the constructor as by connect(), though @types/node lists it for connect only.
  const options: SocketConstructorOpts & { onread: OnReadOpts } = {
    fd,
    readable: true,
    writable: true,
    onread: {
      buffer: () => reader.nextBuffer(),
      callback: (bytes: number) => {
        reader.commit(bytes);
        return true; // keep reading
      },
    },
  };
  const socket = new Socket(options);
  // The server is gone (or closed the pipe): nothing is left to serve.
  socket.on('close', () => process.exit(0));
  socket.on('error', () => process.exit(0));
  return {
    booted: () => {}, // a process is ended with SIGKILL, which is always safe for the server
    nativeHooks: undefined,
    lent: false,
    send: (message) => {
      if (!socket.destroyed) writeFrame(socket, message);
    },
    onMessage: (listener) => {
      deliver = (message) => listener(message as ParentMessage);
      for (const message of waiting.splice(0)) deliver(message);
    },
  };
}
