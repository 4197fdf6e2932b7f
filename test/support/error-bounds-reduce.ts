// Error bounds of sums, maxima and matrix products (see error-bounds.ts for the model).
//
// A float32 sum of n terms in ANY order (sequential in the interpreter, lane-strided and then a
// tree on the GPU, vec4 dot products, fused multiply-adds) errs by at most γ(n−1)·Σ|terms|, where
// γ(k) = k·u/(1 − k·u) (Higham, Accuracy and Stability of Numerical Algorithms, §4.2): every
// partial sum is at most Σ|terms| and each term passes through at most n − 1 roundings. It is
// exact when the terms are exact multiples of one power of two g with Σ|terms| ≤ 2^24·g: every
// partial sum is then a multiple of g below 2^24·g, an f32 number, so no addition rounds. That is
// why the fuzz draws some inputs on a grid: their long sums are checked bit for bit.
import type { Node } from '../../core/ir/node.js';
import { shapeSize, stridesOf } from '../../core/ir/shape.js';
import { stridedOffsets } from '../../core/ops/strided.js';
import type { AddChain } from './error-bounds-chains.js';
import { TINY, U, type Bounded } from './error-bounds.js';

/**
 * The largest f32. Where values (or partial sums) may reach it, f32 overflows to ∞ while float64
 * does not: the analysis gives up there.
 */
export const F32_MAX = 3.4028234663852886e38;

/**
 * The smallest normal f32. WGSL may flush subnormals to zero, so an exact result must be normal:
 * sums on a grid of at least this step are (their partial sums are 0 or at least the step).
 */
export const MIN_NORMAL = 2 ** -126;
export const subnormal = (v: number): boolean => v !== 0 && Math.abs(v) < MIN_NORMAL;

/** Higham's γ(k), ∞ once k·u reaches 1. */
export const gamma = (k: number): number => (k * U < 1 ? (k * U) / (1 - k * U) : Infinity);

const f32 = new Float32Array(1);
const bits = new Uint32Array(f32.buffer);

/** The largest power of two dividing the f32 number x (∞ for 0: no constraint). */
export function lowBit(x: number): number {
  if (x === 0) return Infinity;
  f32[0] = x;
  const w = bits[0];
  const exponent = (w >>> 23) & 0xff;
  let mantissa = w & 0x7fffff;
  if (exponent !== 0) mantissa |= 0x800000;
  const low = mantissa & -mantissa; // lowest set bit
  return 2 ** ((exponent === 0 ? -149 : exponent - 150) + (31 - Math.clz32(low)));
}

/** Per group of a sum: what the bound needs, accumulated term by term. */
class SumGroup {
  count = 0;
  propagated = 0;
  magnitude = 0;
  exact = true;
  grid = Infinity;
  add(term: number, bound: number): void {
    this.count++;
    this.propagated += bound;
    this.magnitude += Math.abs(term) + bound;
    if (bound !== 0 || Math.fround(term) !== term) this.exact = false;
    else this.grid = Math.min(this.grid, lowBit(term));
  }
  /**
   * A term that is itself a chain of additions: the driver may add its leaves to the accumulator
   * one by one (llvmpipe turned acc + (t + t) into (acc + t) + t), so they count as terms.
   */
  addChain(chain: AddChain, i: number): void {
    this.count += chain.leaves;
    this.propagated += chain.propagated[i];
    this.magnitude += chain.magnitude[i];
    if (chain.propagated[i] !== 0) this.exact = false;
    else this.grid = Math.min(this.grid, chain.grid[i]);
  }
  bound(): number {
    if (this.magnitude >= F32_MAX) return Infinity; // a partial sum may overflow
    if (this.exact && this.magnitude <= 2 ** 24 * this.grid && this.grid >= MIN_NORMAL) return 0;
    const e = this.propagated + gamma(this.count - 1) * this.magnitude + TINY * this.count;
    return Number.isNaN(e) ? Infinity : e;
  }
}

/** Output position of each input element of a reduction over `axes`. */
function groupOf(node: Node<'reduceSum' | 'reduceMax'>): Int32Array {
  const inShape = node.inputs[0].shape;
  const outStrides = stridesOf(node.shape);
  let k = 0;
  const strides = inShape.map((_, i) => (node.attrs.axes.includes(i) ? 0 : outStrides[k++]));
  return stridedOffsets(inShape, strides);
}

export function reduceSumBound(node: Node<'reduceSum'>, x: Bounded): Float64Array {
  const groups = groupOf(node);
  const size = shapeSize(node.shape);
  if (node.dtype !== 'f32') {
    // i32 sums wrap alike when every term is exact; else no wrap is assumed.
    const out = new Float64Array(size);
    const total = new Float64Array(size);
    groups.forEach((g, i) => {
      out[g] += x.bound[i];
      total[g] += x.value[i];
    });
    return out.map((e, g) => (e > 0 && Math.abs(total[g]) + e >= 2 ** 31 ? Infinity : e));
  }
  const acc = Array.from({ length: size }, () => new SumGroup());
  const chain = x.chain;
  if (chain === undefined) groups.forEach((g, i) => acc[g].add(x.value[i], x.bound[i]));
  else groups.forEach((g, i) => acc[g].addChain(chain, i));
  return Float64Array.from(acc, (s) => s.bound());
}

/** A maximum moves by at most its operands' largest bound (1-Lipschitz in the sup norm). */
export function reduceMaxBound(node: Node<'reduceMax'>, x: Bounded): Float64Array {
  const out = new Float64Array(shapeSize(node.shape));
  groupOf(node).forEach((g, i) => (out[g] = Math.max(out[g], x.bound[i])));
  return out;
}

/**
 * [...b, m, k] × [...b, k, n]: each output is a sum of k products. Products of f32 numbers are
 * exact in float64; each rounds once in f32 (or not at all, fused), and the sum as above:
 * Σ(|a|ε_b + |b|ε_a + ε_aε_b) + γ(k)·Σ(|a| + ε_a)(|b| + ε_b). i32 products are exact when their
 * operands are.
 */
export function matmulBound(node: Node, a: Bounded, b: Bounded): Float64Array {
  const shapeA = node.inputs[0].shape;
  const r = shapeA.length;
  const [m, k] = [shapeA[r - 2], shapeA[r - 1]];
  const n = node.shape[r - 1];
  const batch = shapeSize(shapeA.slice(0, -2));
  const out = new Float64Array(batch * m * n);
  for (let t = 0; t < batch; t++) {
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        const s = new SumGroup();
        let propagated = 0;
        let exactOperands = true;
        for (let p = 0; p < k; p++) {
          const ia = t * m * k + i * k + p;
          const ib = t * k * n + p * n + j;
          const x = a.value[ia];
          const y = b.value[ib];
          const ex = a.bound[ia];
          const ey = b.bound[ib];
          if (ex !== 0 || ey !== 0) exactOperands = false;
          propagated += Math.abs(x) * ey + Math.abs(y) * ex + ex * ey;
          s.add(x * y, 0);
          s.magnitude += (Math.abs(x) + ex) * (Math.abs(y) + ey) - Math.abs(x * y);
        }
        const at = t * m * n + i * n + j;
        if (node.dtype !== 'f32') out[at] = exactOperands ? 0 : Infinity;
        else if (exactOperands && s.bound() === 0) out[at] = 0;
        else if (s.magnitude >= F32_MAX) out[at] = Infinity;
        else {
          const e = propagated + gamma(k) * s.magnitude + TINY * k;
          out[at] = Number.isNaN(e) ? Infinity : e;
        }
      }
    }
  }
  return out;
}
