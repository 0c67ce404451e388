import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FrameReader, writeFrame, type ParentMessage, type WorkerMessage } from './protocol.js';
import { WORKER_ENTRY, forwardLines, workerEnv, type ExitInfo, type TransportOptions, type WorkerTransport } from './transport.js';

/** util-linux's setpriv, which sets a process's parent-death signal before it runs node. */
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((path) => existsSync(path));

/** The child's end of the framed pipe: stdin, stdout and stderr come first. */
const FRAME_FD = 3;

/**
 * A worker in a child process of its own, for handlers that must be isolated: a native crash, a
 * leak or untrusted code ends only the child. Messages are binary frames (./framing.ts) on a
 * dedicated socket pair; there is no Node IPC channel.
 */
export class ProcessTransport implements WorkerTransport {
  readonly isolation = 'process';
  readonly threadId = undefined;
  readonly exited: Promise<ExitInfo>;
  private readonly child: ChildProcess;
  private readonly socket: Socket;

  constructor(options: TransportOptions) {
    const { events } = options;
    // A temp folder of its own (ONNX Runtime writes files there for each session), removed when it
    // ends. Under the server's work folder: see serve.ts.
    const temp = mkdtempSync(join(tmpdir(), 'worker-'));
    const node = [
      process.execPath,
      '--enable-source-maps',
      ...(options.heapLimitMb === undefined ? [] : [`--max-old-space-size=${options.heapLimitMb}`]),
      fileURLToPath(WORKER_ENTRY),
      `--frame-fd=${FRAME_FD}`,
    ];
    // Through setpriv where there is one (Linux): the kernel then SIGKILLs the worker when the
    // server dies, however it dies, even while the worker's own thread is stuck (an endless loop, a
    // long native call) and cannot notice its socket closing.
    const command = SETPRIV === undefined ? node : [SETPRIV, '--pdeathsig', 'SIGKILL', '--', ...node];
    this.child = spawn(command[0]!, command.slice(1), {
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
      env: { ...workerEnv(), TMPDIR: temp },
      // A process group of its own: Ctrl-C in a terminal reaches the server, which drains and then
      // stops its workers, instead of killing them mid-batch. A worker exits when its pipe closes.
      // The group is killed when the worker ends, so processes its handler started end too.
      detached: true,
    });
    this.socket = this.child.stdio[FRAME_FD] as Socket;
    const reader = new FrameReader((message) => events.onMessage(message as WorkerMessage));
    this.socket.on('data', (chunk: Buffer) => reader.push(chunk));
    this.socket.on('error', () => {}); // the exit that follows says what happened
    forwardLines(this.child.stdout, 'stdout', events);
    forwardLines(this.child.stderr, 'stderr', events);
    this.child.on('error', (error) => events.onError(error));
    // 'close', not 'exit': the pipes are drained by then, so a last frame or stderr line is not lost.
    this.exited = new Promise((resolve) =>
      this.child.once('close', (code, signal) => {
        this.killGroup(); // whatever the handler started goes with it
        void rm(temp, { recursive: true, force: true }).finally(() => resolve({ code, signal }));
      }),
    );
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  send(message: ParentMessage): void {
    if (!this.socket.destroyed && this.socket.writable) writeFrame(this.socket, message);
  }

  /** SIGKILL to the worker and every process it started: they share its process group. */
  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    this.killGroup();
  }

  private killGroup(): void {
    if (this.child.pid === undefined) return;
    try {
      process.kill(-this.child.pid, 'SIGKILL');
    } catch {
      // ESRCH: the group is empty already
    }
  }
}
