/** Element count of a shape. */
export function shapeSize(dims: readonly number[]): number {
  return dims.reduce((n, d) => n * d, 1);
}
