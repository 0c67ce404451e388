import { InferenceSession } from 'onnxruntime-node';

export interface NativeHooks {
  /** A native call (an ONNX Runtime run, a sharp decode) is about to start. */
  enter(): void;
  /** It has finished, whichever way. */
  exit(): void;
}

let hooks: NativeHooks | undefined;

/**
 * Runs `call` between the hooks' enter and exit. A worker thread must not be terminated from
 * outside while it is inside native code (the addon then aborts the whole process; see
 * docs/decisions/0004-worker-isolation.md): the server reads these marks to know when it is safe.
 */
export async function inNative<T>(call: () => Promise<T>): Promise<T> {
  if (hooks === undefined) return call();
  hooks.enter();
  try {
    return await call();
  } finally {
    hooks.exit();
  }
}

/**
 * Installs the hooks, and wraps ONNX Runtime's InferenceSession.create and run with them, once
 * per thread. onnxruntime-node 1.30 runs a session synchronously on the JavaScript thread (inside a
 * setImmediate), so a run is native code from its start to its end.
 */
export function setNativeHooks(next: NativeHooks): void {
  if (hooks === undefined) {
    // The exported InferenceSession is the implementing class at run time; its type is a factory.
    wrap(Reflect.get(InferenceSession, 'prototype'), 'run');
    wrap(InferenceSession, 'create');
  }
  hooks = next;
}

/** Replaces `target[name]`, a method returning a promise, with one that runs inside inNative. */
function wrap(target: unknown, name: string): void {
  if (typeof target !== 'object' && typeof target !== 'function') return;
  if (target === null) return;
  const original: unknown = Reflect.get(target, name);
  if (typeof original !== 'function') return;
  Reflect.set(target, name, function (this: unknown, ...args: unknown[]) {
    return inNative(() => Reflect.apply(original, this, args) as Promise<unknown>);
  });
}
