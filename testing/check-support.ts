// Pieces every optimizer checker shares: which device computes in float64, and exceptions tagged
// with the side of the comparison (the compiled optimizer or the reference) that threw.
import type { Device } from '../runtime/device.js';

/**
 * The float64 interpreter (duck-typed: a CpuDevice from another copy of the package counts too).
 */
export const isFloat64 = (device: Device): boolean =>
  device.kind === 'cpu' && (device as { precision?: string }).precision === 'f64';

export const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** An exception from one side of the comparison, tagged with which side threw and when. */
export class SideError extends Error {
  constructor(
    readonly side: 'the optimizer' | 'the reference',
    readonly step: number,
    readonly thrown: unknown,
  ) {
    super(`${side} threw at step ${step}: ${messageOf(thrown)}`);
  }
}

/** Runs `run`, rethrowing what it throws as a SideError of `side` at `step`. */
export async function blame<T>(
  side: SideError['side'],
  step: number,
  run: () => T | Promise<T>,
): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw new SideError(side, step, error);
  }
}
