/** Softmax over a vector of logits, stable for large values. */
export function softmax(logits: ArrayLike<number>): Float32Array {
  const out = new Float32Array(logits.length);
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]!);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) {
    const e = Math.exp(logits[i]! - max);
    out[i] = e;
    sum += e;
  }
  for (let i = 0; i < out.length; i++) out[i]! /= sum;
  return out;
}

export interface Ranked {
  index: number;
  value: number;
}

/** The k largest values with their indices, largest first; ties keep the lower index first. */
export function topK(values: ArrayLike<number>, k: number): Ranked[] {
  const ranked: Ranked[] = [];
  for (let i = 0; i < values.length; i++) {
    const value = values[i]!;
    if (ranked.length < k || value > ranked[ranked.length - 1]!.value) {
      let at = ranked.length;
      while (at > 0 && ranked[at - 1]!.value < value) at--;
      ranked.splice(at, 0, { index: i, value });
      if (ranked.length > k) ranked.pop();
    }
  }
  return ranked;
}

/** Index of the largest value in `values[offset .. offset+length)`. */
export function argmax(values: ArrayLike<number>, offset = 0, length = values.length - offset): number {
  let best = offset;
  for (let i = offset + 1; i < offset + length; i++) if (values[i]! > values[best]!) best = i;
  return best - offset;
}
