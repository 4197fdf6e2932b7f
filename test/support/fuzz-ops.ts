// The instruction set of the compiler fuzz (fuzz-programs.ts): one builder per kind of op over
// the DSL's public API. A builder gets the operand v_x, the raw draw r (integers choosing
// partners and parameters, each taken modulo the number of candidates, so any draw is valid and
// shrinking integers towards 0 simplifies the choice) and the pool of values so far; it returns
// the instruction, or null when it does not apply to v_x.
import {
  abs,
  add,
  bitAnd,
  bitOr,
  bitXor,
  broadcastTo,
  cast,
  concat,
  constant,
  cos,
  div,
  eq,
  erf,
  exp,
  expandDims,
  flatten,
  floor,
  full,
  ge,
  gelu,
  gt,
  iota,
  isFinite as finite,
  le,
  log,
  logSoftmax,
  logsumexp,
  lt,
  matmul,
  max,
  maximum,
  mean,
  min,
  minimum,
  mT,
  mul,
  ne,
  neg,
  normal,
  pad,
  pow,
  prngKey,
  randomBits,
  recip,
  relu,
  reshape,
  rsqrt,
  shiftLeft,
  shiftRight,
  sigmoid,
  sign,
  sin,
  slice,
  softmax,
  sqrt,
  square,
  squeeze,
  sub,
  sum,
  take,
  tanh,
  transpose,
  uniform,
  where,
  windows,
  type Tensor,
} from '../../index.js';
import type { DType } from '../../core/ir/dtype.js';
import { prng, sizeOf } from './random.js';

export type Shape = readonly number[];

/** A pool value's type. */
export interface Value {
  readonly shape: Shape;
  readonly dtype: DType;
}

/** The integers one instruction is drawn as. */
export interface RawInstruction {
  readonly op: number;
  readonly a: number;
  readonly b: number;
  readonly p: number;
  readonly q: number;
}

/** A resolved instruction before its result type is traced. */
export interface Made {
  readonly args: readonly number[];
  readonly text: string;
  readonly build: (args: readonly Tensor[]) => Tensor;
  /** Element operations it costs when more than its result's size (products, virtual arrays). */
  readonly work?: number;
  /** Elements of an array it computes but never stores (a broadcast summed in place). */
  readonly virtual?: number;
}

export type Builder = (x: number, r: RawInstruction, pool: readonly Value[]) => Made | null;

export const pick = <T>(xs: readonly T[], k: number): T => xs[k % xs.length];
export const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
const fmt = (s: Shape) => `[${s.join(',')}]`;

export function broadcastShape(a: Shape, b: Shape): number[] | null {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const x = a[a.length - rank + i] ?? 1;
    const y = b[b.length - rank + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) return null;
    out.push(x === 1 ? y : x);
  }
  return out;
}

/** Operands `y` of `dtype` that broadcast with v_x. */
function partners(x: number, pool: readonly Value[], dtype: DType, allowSelf: boolean): number[] {
  return range(pool.length).filter(
    (y) =>
      (allowSelf || y !== x) &&
      pool[y].dtype === dtype &&
      broadcastShape(pool[x].shape, pool[y].shape) !== null,
  );
}

const text = (template: string, x: number, y = -1, z = -1) =>
  template.replaceAll('$x', `v${x}`).replaceAll('$y', `v${y}`).replaceAll('$z', `v${z}`);

/** A unary op on values of the given dtypes. */
const unary =
  (template: string, dtypes: readonly DType[], f: (t: Tensor) => Tensor): Builder =>
  (x, _r, pool) =>
    dtypes.includes(pool[x].dtype)
      ? { args: [x], text: text(template, x), build: ([t]) => f(t) }
      : null;

/** A broadcasting binary op: v_x with a partner of its dtype, or with a constant. */
const binary =
  (
    template: string,
    dtypes: readonly DType[],
    f: (s: Tensor, t: Tensor) => Tensor,
    constants: readonly number[] = [],
  ): Builder =>
  (x, r, pool) => {
    const dtype = pool[x].dtype;
    if (!dtypes.includes(dtype)) return null;
    const ys = partners(x, pool, dtype, true);
    if (constants.length > 0 && (ys.length === 0 || r.q % 4 === 0)) {
      const c = pick(constants, r.p);
      const t = template.replaceAll('$y', String(c));
      return {
        args: [x],
        text: text(t, x),
        build: ([s]) => f(s, full([], c, dtype)),
      };
    }
    if (ys.length === 0) return null;
    const y = pick(ys, r.b);
    return { args: [x, y], text: text(template, x, y), build: ([s, t]) => f(s, t) };
  };

const F32: readonly DType[] = ['f32'];
const I32: readonly DType[] = ['i32'];
const NUMERIC: readonly DType[] = ['f32', 'i32'];
// x² + 1 ≥ 1: inside every domain, away from poles
const guarded = (t: Tensor) => add(mul(t, t), 1);
const POWERS = [-1.5, -0.5, 0.5, 1.5, 2, 3];
const COMPARISONS = [lt, le, gt, ge, eq, ne];
const COMPARISON_NAMES = ['<', '<=', '>', '>=', '==', '!='];

/** The axes of v_x picked by the bits of p (all of them when p picks none). */
function axesOf(rank: number, p: number): number[] {
  const axes = range(rank).filter((i) => (p >> i) & 1);
  return axes.length > 0 ? axes : range(rank);
}

const reduction: Builder = (x, r, pool) => {
  const { shape, dtype } = pool[x];
  if (shape.length === 0 || dtype === 'bool') return null;
  const kinds = dtype === 'f32' ? ['sum', 'mean', 'max', 'min'] : ['sum', 'max', 'min'];
  const kind = pick(kinds, r.b);
  const f = { sum, mean, max, min }[kind as 'sum'];
  const axes = axesOf(shape.length, r.p);
  const keep = r.q % 2 === 1;
  return {
    args: [x],
    text: `${kind}(v${x}, axes=${fmt(axes)}${keep ? ', keepdims' : ''})`,
    build: ([t]) => f(t, axes, keep),
  };
};

/** x @ y, x @ yᵀ or with a vector: any pair of one dtype whose inner sizes match. */
const product: Builder = (x, r, pool) => {
  const sx = pool[x].shape;
  if (sx.length === 0 || pool[x].dtype === 'bool') return null;
  const k = sx[sx.length - 1];
  const options = range(pool.length).flatMap((y) => {
    const sy = pool[y].shape;
    if (pool[y].dtype !== pool[x].dtype || sy.length === 0) return [];
    if (broadcastShape(sx.slice(0, -2), sy.slice(0, -2)) === null) return [];
    const plain = sy.length === 1 ? sy[0] === k : sy[sy.length - 2] === k;
    const transposed = sy.length >= 2 && sy[sy.length - 1] === k;
    return [...(plain ? [{ y, t: false }] : []), ...(transposed ? [{ y, t: true }] : [])];
  });
  if (options.length === 0) return null;
  const { y, t } = pick(options, r.b);
  const sy = pool[y].shape;
  const n = sy.length === 1 ? 1 : sy[sy.length - (t ? 2 : 1)];
  const m = sx.length === 1 ? 1 : sx[sx.length - 2];
  return {
    work: Math.max(sizeOf(sx) * n, sizeOf(sy) * m),
    args: [x, y],
    text: `v${x} @ v${y}${t ? '.mT' : ''}`,
    build: ([s, u]) => matmul(s, t ? mT(u) : u),
  };
};

/** Shapes of rank 1–4 with `size` elements (a few of them), other than `not`. */
function reshapeTargets(size: number, not: Shape): number[][] {
  const divisors = [1, 2, 3, 4, 5, 7, 8, 16, 64].filter((d) => size % d === 0 && d < size);
  const out: number[][] = [[size]];
  for (const d of divisors) {
    out.push([d, size / d], [size / d, d]);
    for (const e of divisors) if ((size / d) % e === 0) out.push([d, size / d / e, e]);
  }
  if (size % 4 === 0) out.push([1, 2, 2, size / 4]);
  return out.filter((s) => s.join(',') !== not.join(','));
}

const movement: readonly Builder[] = [
  (x, r, pool) => {
    const rank = pool[x].shape.length;
    if (rank < 2) return null;
    const perm = range(rank);
    for (let i = rank - 1; i > 0; i--) {
      const j = (r.p >> (2 * i)) % (i + 1);
      [perm[i], perm[j]] = [perm[j], perm[i]];
    }
    if (perm.every((v, i) => v === i)) [perm[0], perm[1]] = [perm[1], perm[0]];
    return {
      args: [x],
      text: `transpose(v${x}, ${fmt(perm)})`,
      build: ([t]) => transpose(t, perm),
    };
  },
  (x, r, pool) => {
    const s = pool[x].shape;
    const target = pick(reshapeTargets(sizeOf(s), s), r.p);
    if (target === undefined) return null;
    if (target.length === 1)
      return { args: [x], text: `flatten(v${x})`, build: ([t]) => flatten(t) };
    return {
      args: [x],
      text: `reshape(v${x}, ${fmt(target)})`,
      build: ([t]) => reshape(t, target),
    };
  },
  (x, r, pool) => {
    const s = pool[x].shape;
    if (s.length >= 4) return null;
    const target = [pick([2, 3, 5], r.p), ...s];
    return {
      args: [x],
      text: `broadcastTo(v${x}, ${fmt(target)})`,
      build: ([t]) => broadcastTo(t, target),
    };
  },
  (x, r, pool) => {
    const s = pool[x].shape;
    const ones = range(s.length).filter((i) => s[i] === 1);
    if (ones.length > 0 && r.q % 2 === 1) {
      const axis = pick(ones, r.p);
      return { args: [x], text: `squeeze(v${x}, ${axis})`, build: ([t]) => squeeze(t, axis) };
    }
    if (s.length >= 4) return null;
    const axis = r.p % (s.length + 1);
    return { args: [x], text: `expandDims(v${x}, ${axis})`, build: ([t]) => expandDims(t, axis) };
  },
  // A window along one axis: lo and hi from p and q (hi ≥ lo; an empty slice sometimes).
  (x, r, pool) => {
    const s = pool[x].shape;
    if (s.length === 0) return null;
    const axis = r.b % s.length;
    const d = s[axis];
    const lo = r.p % (d + 1);
    const hi = lo + (r.q % (d - lo + 1));
    if (lo === 0 && hi === d) return null;
    const starts = s.map((_, i) => (i === axis ? lo : 0));
    const ends = s.map((n, i) => (i === axis ? hi : n));
    const t = `v${x}[${s.map((_, i) => (i === axis ? `${lo}:${hi}` : ':')).join(', ')}]`;
    return { args: [x], text: t, build: ([u]) => slice(u, starts, ends) };
  },
  (x, r, pool) => {
    const s = pool[x].shape;
    if (s.length === 0) return null;
    const axis = r.p % s.length;
    const [l, h] = pick(
      [
        [1, 0],
        [0, 1],
        [2, 3],
      ],
      r.q,
    );
    const lo = s.map((_, i) => (i === axis ? l : 0));
    const hi = s.map((_, i) => (i === axis ? h : 0));
    return {
      args: [x],
      text: `pad(v${x}, lo=${fmt(lo)}, hi=${fmt(hi)})`,
      build: ([t]) => pad(t, lo, hi),
    };
  },
  (x, r, pool) => {
    const { shape: s, dtype } = pool[x];
    if (dtype === 'bool') return null;
    const pairs = range(pool.length).flatMap((y) =>
      range(s.length)
        .filter(
          (axis) =>
            pool[y].dtype === dtype &&
            pool[y].shape.length === s.length &&
            pool[y].shape.every((d, i) => i === axis || d === s[i]),
        )
        .map((axis) => ({ y, axis })),
    );
    if (pairs.length === 0) return null;
    const { y, axis } = pick(pairs, r.b);
    return {
      args: [x, y],
      text: `concat([v${x}, v${y}], axis=${axis})`,
      build: ([u, t]) => concat([u, t], axis),
    };
  },
];

/** take(v_x, ids): constant ids in [−1, rows] (out of range ones clamp), or an i32 pool value. */
const gather: Builder = (x, r, pool) => {
  const s = pool[x].shape;
  if (s.length === 0 || s[0] === 0) return null;
  const idValues = range(pool.length).filter(
    (y) => pool[y].dtype === 'i32' && sizeOf(pool[y].shape) <= 64,
  );
  if (idValues.length > 0 && r.q % 3 === 0) {
    const y = pick(idValues, r.b);
    return { args: [x, y], text: `take(v${x}, v${y})`, build: ([t, ids]) => take(t, ids) };
  }
  const idsShape = r.q % 2 === 0 ? [1 + ((r.q >> 1) % 5)] : [1 + ((r.q >> 1) % 3), 2];
  const rng = prng(r.p);
  const ids = Array.from({ length: sizeOf(idsShape) }, () => Math.floor(rng() * (s[0] + 2)) - 1);
  return {
    args: [x],
    text: `take(v${x}, ${JSON.stringify(ids)} as ${fmt(idsShape)})`,
    build: ([t]) => take(t, constant(ids, idsShape, 'i32')),
  };
};

/** Sliding windows of an NHWC value (rank 4). */
const slidingWindows: Builder = (x, r, pool) => {
  const { shape, dtype } = pool[x];
  if (shape.length !== 4 || dtype !== 'f32') return null;
  const k: [number, number] = [1 + (r.p % 3), 1 + ((r.p >> 2) % 3)];
  const stride = 1 + (r.q % 2);
  const padding = (r.q >> 1) % 2;
  if (shape[1] + 2 * padding < k[0] || shape[2] + 2 * padding < k[1]) return null;
  return {
    args: [x],
    text: `windows(v${x}, ${fmt(k)}, stride=${stride}, padding=${padding})`,
    build: ([t]) => windows(t, k, { stride, padding }),
  };
};

/** Comparisons give bool values; where() and casts consume them. */
const comparison: Builder = (x, r, pool) => {
  const dtype = pool[x].dtype;
  if (dtype === 'bool') return null;
  const k = r.p % COMPARISONS.length;
  const ys = partners(x, pool, dtype, false);
  if (ys.length === 0 || r.q % 3 === 0) {
    const c = dtype === 'f32' ? pick([0, 0.5, -0.25], r.b) : pick([0, 1, -3], r.b);
    return {
      args: [x],
      text: `v${x} ${COMPARISON_NAMES[k]} ${c}`,
      build: ([t]) => COMPARISONS[k](t, full([], c, dtype)),
    };
  }
  const y = pick(ys, r.b);
  return {
    args: [x, y],
    text: `v${x} ${COMPARISON_NAMES[k]} v${y}`,
    build: ([s, t]) => COMPARISONS[k](s, t),
  };
};

/** where(c, y, z) for a bool v_x and numeric partners that broadcast with it (or constants). */
const selection: Builder = (x, r, pool) => {
  if (pool[x].dtype !== 'bool') return null;
  const ys = range(pool.length).filter(
    (y) => pool[y].dtype !== 'bool' && broadcastShape(pool[x].shape, pool[y].shape) !== null,
  );
  if (ys.length === 0) return null;
  const y = pick(ys, r.b);
  const zs = ys.filter((z) => pool[z].dtype === pool[y].dtype);
  if (r.q % 3 === 0) {
    const c = pool[y].dtype === 'f32' ? -0.5 : 7;
    return {
      args: [x, y],
      text: `where(v${x}, v${y}, ${c})`,
      build: ([cond, t]) => where(cond, t, full([], c, pool[y].dtype)),
    };
  }
  const z = pick(zs, r.p);
  return {
    args: [x, y, z],
    text: `where(v${x}, v${y}, v${z})`,
    build: ([cond, t, u]) => where(cond, t, u),
  };
};

const casts: Builder = (x, r, pool) => {
  const from = pool[x].dtype;
  const targets = (['f32', 'i32', 'bool'] as const).filter((d) => d !== from);
  const to = pick(targets, r.p);
  // f32 → i32 scaled by 4 first (sometimes), so that values spread over several integers.
  if (from === 'f32' && to === 'i32' && r.q % 2 === 0)
    return { args: [x], text: `i32(v${x} * 4)`, build: ([t]) => cast(mul(t, 4), 'i32') };
  return { args: [x], text: `${to}(v${x})`, build: ([t]) => cast(t, to) };
};

/** Random numbers over v_x's shape (threefry: i32 bit operations), combined with v_x. */
const random: Builder = (x, r, pool) => {
  const { shape, dtype } = pool[x];
  const key = r.p % 1000;
  if (dtype === 'i32')
    return {
      args: [x],
      text: `v${x} ^ randomBits(key ${key})`,
      build: ([t]) => bitXor(t, randomBits(prngKey(key), shape)),
    };
  if (dtype !== 'f32') return null;
  return r.q % 2 === 0
    ? {
        args: [x],
        text: `v${x} + uniform(key ${key})`,
        build: ([t]) => add(t, uniform(prngKey(key), shape)),
      }
    : {
        args: [x],
        text: `v${x} * normal(key ${key})`,
        build: ([t]) => mul(t, normal(prngKey(key), shape)),
      };
};

/**
 * Work needed only under a condition computed on the device (a gated dispatch): a reduction of
 * v_y kept only where the sum of v_x is positive.
 */
const gated: Builder = (x, r, pool) => {
  if (pool[x].dtype !== 'f32') return null;
  const ys = range(pool.length).filter((y) => pool[y].dtype === 'f32' && pool[y].shape.length > 0);
  if (ys.length === 0) return null;
  const y = pick(ys, r.b);
  return {
    args: [x, y],
    text: `where(sum(v${x}) > 0, exp(-abs(sum(v${y}, -1, keepdims))), v${y})`,
    build: ([s, t]) => where(gt(sum(s), 0), exp(neg(abs(sum(t, -1, true)))), t),
  };
};

/**
 * A sum over a broadcast axis of width w that is never stored: a long (wide) reduction per
 * element of v_x, with a ±0.5/±1.5 pattern along the axis so that its terms differ.
 */
const broadcastSum: Builder = (x, r, pool) => {
  const { shape, dtype } = pool[x];
  if (dtype !== 'f32') return null;
  const w = pick([3, 1031, 1024, 2053], r.p);
  return {
    work: sizeOf(shape) * w,
    virtual: sizeOf(shape) * w,
    args: [x],
    text: `sum(v${x}[..., None] * pattern[${w}], -1)`,
    build: ([t]) => {
      const pattern = sub(cast(bitAnd(iota([w], 0), 3), 'f32'), 1.5);
      return sum(mul(broadcastTo(expandDims(t, -1), [...shape, w]), pattern), -1);
    },
  };
};

/** The instruction set; `op` of a draw picks one (modulo its length). */
export const OPS: readonly Builder[] = [
  unary('log($x*$x+1)', F32, (t) => log(guarded(t))),
  unary('sqrt($x*$x+1)', F32, (t) => sqrt(guarded(t))),
  unary('rsqrt($x*$x+1)', F32, (t) => rsqrt(guarded(t))),
  unary('recip($x*$x+1)', F32, (t) => recip(guarded(t))),
  (x, r, pool) => {
    const c = pick(POWERS, r.p);
    return unary(`pow($x*$x+1, ${c})`, F32, (t) => pow(guarded(t), c))(x, r, pool);
  },
  binary('pow($x*$x+1, tanh($y))', F32, (s, t) => pow(guarded(s), tanh(t))),
  unary('exp(tanh($x))', F32, (t) => exp(tanh(t))),
  unary('exp($x)', F32, exp),
  unary('sin($x)', F32, sin),
  unary('cos($x)', F32, cos),
  unary('tanh($x)', F32, tanh),
  unary('erf($x)', F32, erf),
  (x, r, pool) =>
    r.p % 2 === 0
      ? unary('gelu($x)', F32, (t) => gelu(t))(x, r, pool)
      : unary("gelu($x, 'tanh')", F32, (t) => gelu(t, 'tanh'))(x, r, pool),
  unary('abs($x)', NUMERIC, abs),
  unary('neg($x)', NUMERIC, neg),
  unary('relu($x)', F32, relu),
  unary('sigmoid($x)', F32, sigmoid),
  unary('sign($x)', NUMERIC, sign),
  unary('floor($x*2)', F32, (t) => floor(mul(t, 2))),
  unary('isFinite(exp($x))', F32, (t) => finite(exp(t))),
  unary('square($x)', F32, square),
  binary('$x + $y', NUMERIC, add, [1, -3, 0.5]),
  binary('$x - $y', NUMERIC, sub, [2, -1]),
  binary('$x * $y', NUMERIC, mul, [-3, 0.25, 1024]),
  binary('$x / ($y*$y+0.5)', F32, (s, t) => div(s, add(mul(t, t), 0.5))),
  binary('$x / $y', I32, div, [3, -2, 0]),
  binary('maximum($x, $y)', NUMERIC, maximum, [0.25, 2]),
  binary('minimum($x, $y)', NUMERIC, minimum, [-0.25, -2]),
  binary('where($x > $y, $x, $y)', F32, (s, t) => where(s.gt(t), s, t)),
  binary('bitAnd($x, $y)', I32, bitAnd, [0xff, -16]),
  binary('bitOr($x, $y)', I32, bitOr, [1, 0x40000000]),
  binary('bitXor($x, $y)', I32, bitXor, [-1, 0x5555]),
  binary('$x << $y', I32, shiftLeft, [1, 31, 33, -1]),
  binary('$x >>> $y', I32, shiftRight, [1, 31, 33, 4]),
  (x, r, pool) => {
    const { shape, dtype } = pool[x];
    if (dtype === 'bool' || shape.length === 0) return null;
    const axis = r.p % shape.length;
    return {
      args: [x],
      text: `v${x} + iota(${fmt(shape)}, ${axis})`,
      build: ([t]) => add(t, iota(shape, axis, dtype)),
    };
  },
  comparison,
  comparison,
  selection,
  selection,
  casts,
  reduction,
  reduction,
  product,
  product,
  ...movement,
  gather,
  slidingWindows,
  (x, r, pool) => {
    const rank = pool[x].shape.length;
    if (rank === 0 || pool[x].dtype !== 'f32') return null;
    const axis = r.p % rank;
    const keep = r.q % 2 === 1;
    return pick(
      [
        {
          args: [x],
          text: `softmax(v${x}, ${axis})`,
          build: ([t]: readonly Tensor[]) => softmax(t, axis),
        },
        {
          args: [x],
          text: `logSoftmax(v${x}, ${axis})`,
          build: ([t]: readonly Tensor[]) => logSoftmax(t, axis),
        },
        {
          args: [x],
          text: `logsumexp(v${x}, ${axis}${keep ? ', keepdims' : ''})`,
          build: ([t]: readonly Tensor[]) => logsumexp(t, axis, keep),
        },
      ],
      r.b,
    );
  },
  random,
  gated,
  broadcastSum,
];
