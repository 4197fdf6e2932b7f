// Bounds of f32 sums and products as the driver may regroup them (see error-bounds.ts).
//
// Shader compilers reassociate floating-point arithmetic WGSL does not mark exact: Mesa's NIR
// rewrote (a + b) + 1 as (a + 1) + b on llvmpipe, so a + b = 0.00073468685 (exact) then + 1
// (exact) came out one ULP low, and acc + (t + t) in a reduction's loop as (acc + t) + t. So a
// chain of additions (add, sub, neg; a sum's terms too) is bounded as a sum of its leaves in any
// order (error-bounds-reduce.ts): exact only when its leaves are exact multiples of one power of
// two whose magnitudes sum below 2^24 of it, else Σ leaf bounds + γ(leaves − 1)·Σ|leaves|. A
// chain of products of F factors errs by at most γ(F − 1) relative to its value in any order,
// and is exact only as a single product.
import { F32_MAX, gamma, lowBit, MIN_NORMAL, subnormal } from './error-bounds-reduce.js';
import { TINY, type Bounded } from './error-bounds.js';

/** A chain of additions: its leaves' count, and per element Σ|leaf|, Σ leaf bound, their grid. */
export interface AddChain {
  readonly leaves: number;
  readonly magnitude: Float64Array;
  readonly propagated: Float64Array;
  readonly grid: Float64Array;
}

/** An operand as a chain: its own, or a leaf. */
function chainOf(x: Bounded): AddChain {
  return (
    x.chain ?? {
      leaves: 1,
      magnitude: x.value.map((v, i) => Math.abs(v) + x.bound[i]),
      propagated: x.bound,
      grid: x.value.map((v, i) => (x.bound[i] === 0 ? lowBit(v) : 0)),
    }
  );
}

/** f32 a + b or a − b, as one more step of a and b's chains. */
export function addBound(a: Bounded, b: Bounded): { bound: Float64Array; chain: AddChain } {
  const [p, q] = [chainOf(a), chainOf(b)];
  const leaves = p.leaves + q.leaves;
  const magnitude = p.magnitude.map((m, i) => m + q.magnitude[i]);
  const propagated = p.propagated.map((e, i) => e + q.propagated[i]);
  const grid = p.grid.map((g, i) => Math.min(g, q.grid[i]));
  const g = gamma(leaves - 1);
  const bound = magnitude.map((m, i) => {
    if (m >= F32_MAX) return Infinity; // a partial sum may overflow
    if (propagated[i] === 0 && m <= 2 ** 24 * grid[i] && grid[i] >= MIN_NORMAL) return 0;
    const e = propagated[i] + g * m + TINY * (leaves - 1);
    return Number.isNaN(e) ? Infinity : e;
  });
  return { bound, chain: { leaves, magnitude, propagated, grid } };
}

/** f32 a·b, one more factor of a and b's products. */
export function mulBound(
  a: Bounded,
  b: Bounded,
  y: Float64Array,
): { bound: Float64Array; factors: number } {
  const factors = (a.factors ?? 1) + (b.factors ?? 1);
  const g = gamma(factors - 1);
  const bound = y.map((v, i) => {
    const p = a.value[i];
    const q = b.value[i];
    const ea = a.bound[i];
    const eb = b.bound[i];
    if (factors === 2 && ea === 0 && eb === 0 && Math.fround(v) === v && !subnormal(v)) return 0;
    const dev = Math.abs(p) * eb + Math.abs(q) * ea + ea * eb;
    const e = dev + g * (Math.abs(v) + dev) + TINY;
    return Number.isNaN(e) ? Infinity : e;
  });
  return { bound, factors };
}
