import { GrngError } from '../../core/errors.js';

/** `n` when it is a positive integer; otherwise a GrngError naming the layer and the setting. */
export function positiveInteger(op: string, what: string, n: unknown): number {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1)
    throw new GrngError(op, `${what} must be a positive integer, got ${String(n)}`);
  return n;
}
