import { GrngError } from '../core/errors.js';

/**
 * The compiled variants of a step whose update uses `every(period, …)`. Which periods are active
 * at step t (t ≡ 1 mod period) picks the variant; each variant is its own program, traced with
 * exactly those branches taken, so nothing branches on the host inside a step.
 */
export class StepVariants<F> {
  private readonly periods = new Set<number>();
  private readonly compiled = new Map<string, F>();
  private t = 0;

  constructor(private readonly build: (variants: StepVariants<F>) => F) {}

  /** The `every` of a step context, for the step being traced. */
  readonly every = <T>(period: number, work: () => T, otherwise: () => T): T => {
    if (!Number.isInteger(period) || period < 1)
      throw new GrngError('every', `the period must be a positive integer, got ${String(period)}`);
    if (this.t === 0) throw new GrngError('every', 'called outside a compiled step');
    this.periods.add(period);
    return (this.t - 1) % period === 0 ? work() : otherwise();
  };

  /**
   * Calls `call` with the program for step t (1-based); a program traced during the call learns
   * its periods then, and is filed under the pattern it was traced with.
   */
  run<R>(t: number, call: (program: F) => R): R {
    const key = this.keyAt(t);
    const program = this.compiled.get(key) ?? this.build(this);
    const outer = this.t;
    this.t = t;
    try {
      return call(program);
    } finally {
      this.t = outer;
      this.compiled.set(this.keyAt(t), program);
    }
  }

  /** How many distinct programs were compiled (one per pattern of active periods). */
  get size(): number {
    return this.compiled.size;
  }

  private keyAt(t: number): string {
    return [...this.periods]
      .filter((p) => (t - 1) % p === 0)
      .sort((a, b) => a - b)
      .join(',');
  }
}
