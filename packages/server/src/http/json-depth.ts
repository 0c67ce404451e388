import { sdkError } from '@kiln/handler-sdk/errors';
import type { KilnError } from '@kiln/handler-sdk/errors';

/** How deep a JSON body may nest. Real bodies nest a handful of levels; 200,000 would overflow the stack. */
export const MAX_JSON_DEPTH = 64;

/**
 * Whether a parsed JSON value nests objects or lists more than `limit` deep. Walks with a stack
 * of its own, never by recursion, so a hostile body cannot overflow the call stack here.
 */
export function nestedDeeperThan(value: unknown, limit = MAX_JSON_DEPTH): boolean {
  const pending: [unknown, number][] = [[value, 0]];
  while (pending.length > 0) {
    const [item, depth] = pending.pop()!;
    if (item === null || typeof item !== 'object') continue;
    if (depth >= limit) return true;
    const children = Array.isArray(item) ? item : Object.values(item);
    for (const child of children) if (child !== null && typeof child === 'object') pending.push([child, depth + 1]);
  }
  return false;
}

/** 400 KILN_ERR_BAD_REQUEST for a body nested too deeply; `what` names it ("the JSON body", "instance 3"). */
export function tooDeep(what: string): KilnError {
  return sdkError('KILN_ERR_BAD_REQUEST', `${what} nests lists or objects more than ${MAX_JSON_DEPTH} levels deep; send a flatter body`);
}

/** True for the RangeError V8 throws when a recursion (JSON.stringify, Array#flat) runs out of stack. */
export function isStackOverflow(error: unknown): boolean {
  return error instanceof RangeError && /call stack/i.test(error.message);
}
