// Counter-based random numbers (JAX-style keys): every value is a pure function of a key and
// the element's index, computed by integer ops that wrap identically in the interpreter and in
// WGSL, so `randomBits` and `uniform` are bit-identical on every device and in either
// interpreter precision. Keys are i32 tensors, so a seed or a step counter can be a runtime
// input: a new key needs no recompile.
import { shapeSize } from '../core/ir/index.js';
import { fmtShape, GrngError } from '../core/errors.js';
import { bitOr, bitXor, shiftLeft, shiftRight } from './ops/bitwise.js';
import { constant, iota, scalar } from './ops/creation.js';
import { add, cast, cos, ge, log, maximum, mul, neg, sqrt, sub, where } from './ops/elementwise.js';
import { concat, expandDims, reshape, slice } from './ops/movement.js';
import { max, sum } from './ops/reduce.js';
import type { Shape } from './shape-types.js';
import { Tensor } from './tensor.js';

/**
 * A PRNG key: an i32 tensor of shape [2] (two 32-bit words). An i32 scalar s is accepted
 * wherever a key is, as the key [0, s] (`prngKey(s)`).
 */
export type Key = Tensor;

// ---------------------------------------------------------------------------------------------
// The hash: Threefry-2x32 with 20 rounds (Salmon, Moraes, Dror & Shaw, "Parallel random numbers:
// as easy as 1, 2, 3", SC 2011; the generator of Random123 and of JAX). A keyed bijection of 64-bit
// counters built from 32-bit add, rotate and xor only (Philox needs a 32×32→64-bit multiply-high,
// which WGSL lacks), and it passes BigCrush with 13 rounds or more; 20 is the standard. The core
// is JAX's, but the streams are not: the domain tags below put derived keys on their own counters.

const ROTATIONS = [
  [13, 15, 26, 6],
  [17, 29, 16, 24],
] as const;
/** Threefish's key-schedule parity constant. */
const PARITY = 0x1bd11bda;

const rotl = (x: Tensor, r: number): Tensor => bitOr(shiftLeft(x, r), shiftRight(x, 32 - r));

/**
 * Threefry-2x32-20 of the counters (c0, c1) under the key (k0, k1), elementwise with broadcasting
 * (key words are usually scalars). Returns both output words; they match Random123's known-answer
 * vectors (see test/dsl/random.test.ts).
 */
export function threefry2x32(k0: Tensor, k1: Tensor, c0: Tensor, c1: Tensor): [Tensor, Tensor] {
  for (const [name, t] of [
    ['k0', k0],
    ['k1', k1],
    ['c0', c0],
    ['c1', c1],
  ] as const) {
    if (!(t instanceof Tensor) || t.dtype !== 'i32')
      throw new GrngError('threefry2x32', `${name} must be an i32 tensor, got ${describe(t)}`);
  }
  const ks = [k0, k1, bitXor(bitXor(k0, k1), PARITY)];
  let x0 = add(c0, ks[0]);
  let x1 = add(c1, ks[1]);
  for (let i = 0; i < 5; i++) {
    for (const r of ROTATIONS[i % 2]) {
      x0 = add(x0, x1);
      x1 = bitXor(rotl(x1, r), x0);
    }
    // Key injection i + 1 (the +i+1 on the key word is scalar work when the key is a scalar).
    x0 = add(x0, ks[(i + 1) % 3]);
    x1 = add(x1, add(ks[(i + 2) % 3], i + 1));
  }
  return [x0, x1];
}

// Domain tags in the high counter word keep the streams of one key apart: the bits of element i,
// the i-th key of split and foldIn(data) hash different counters, so foldIn(k, 0) is never
// split(k)[0] and no derived key's words are bits the parent key also hands out.
const BITS = 0;
const SPLIT = 1;
const FOLD = 2;

function describe(x: unknown): string {
  return x instanceof Tensor ? `${x.dtype}${fmtShape(x.shape)}` : typeof x;
}

/** The two words of a key ([2] i32, or an i32 scalar s standing for [0, s]) as scalars. */
function keyWords(op: string, key: Key): [Tensor, Tensor] {
  if (
    !(key instanceof Tensor) ||
    key.dtype !== 'i32' ||
    !(key.rank === 0 || (key.rank === 1 && key.shape[0] === 2))
  ) {
    throw new GrngError(
      op,
      `key must be an i32 tensor of shape [2] (or an i32 scalar seed), got ` +
        `${describe(key)}; make one with prngKey(seed)`,
    );
  }
  if (key.rank === 0) return [scalar(0, 'i32'), key];
  return [reshape(slice(key, [0], [1]), []), reshape(slice(key, [1], [2]), [])];
}

function checkShape(op: string, shape: Shape): number[] {
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new GrngError(
      op,
      `shape ${Array.isArray(shape) ? fmtShape(shape) : String(shape)} must ` +
        `be an array of non-negative integers`,
    );
  }
  if (shapeSize(shape) > 2 ** 31)
    throw new GrngError(
      op,
      `shape ${fmtShape(shape)} has more than 2^31 elements; counters are i32`,
    );
  return [...shape];
}

/** Both Threefry words for every element of `shape`, from counters (tag, flat index). */
function words(op: string, key: Key, shape: Shape, tag: number): [Tensor, Tensor] {
  const s = checkShape(op, shape);
  const [k0, k1] = keyWords(op, key);
  return threefry2x32(k0, k1, scalar(tag, 'i32'), reshape(iota([shapeSize(s)]), s));
}

/** Stacks two word tensors into keys along a new last axis. */
const stack = (w0: Tensor, w1: Tensor): Key => concat([expandDims(w0, -1), expandDims(w1, -1)], -1);

// ---------------------------------------------------------------------------------------------
// Keys

/**
 * The key [0, seed] for an integer seed (a number, read as its 32-bit pattern, or an i32 scalar
 * tensor).
 */
export function prngKey(seed: number | Tensor): Key {
  if (typeof seed === 'number') {
    if (!Number.isInteger(seed) || seed < -(2 ** 31) || seed >= 2 ** 32)
      throw new GrngError('prngKey', `seed ${seed} must be an integer in [-2^31, 2^32)`);
    return constant([0, seed | 0], [2], 'i32');
  }
  if (!(seed instanceof Tensor) || seed.dtype !== 'i32' || seed.rank !== 0) {
    throw new GrngError(
      'prngKey',
      `seed must be a number or an i32 scalar tensor, got ${describe(seed)}; ` +
        `cast a step counter with cast(t, 'i32')`,
    );
  }
  return stack(scalar(0, 'i32'), seed);
}

/**
 * `n` new keys derived from `key` (`const [k1, k2] = split(key)`), independent of each other, of
 * `key`'s own draws and of foldIn's keys. One Threefry evaluation over [n] counters, sliced.
 */
export function split(key: Key, n = 2): Key[] {
  if (!Number.isInteger(n) || n < 1)
    throw new GrngError('split', `n must be a positive integer, got ${n}`);
  const [w0, w1] = words('split', key, [n], SPLIT);
  const keys = stack(w0, w1);
  return Array.from({ length: n }, (_, i) => reshape(slice(keys, [i, 0], [i + 1, 2]), [2]));
}

/**
 * The key of `key` combined with an integer (a number, or an i32 scalar tensor such as a step
 * counter fed at run time): distinct data give independent keys.
 */
export function foldIn(key: Key, data: number | Tensor): Key {
  let d: Tensor;
  if (typeof data === 'number') {
    if (!Number.isInteger(data) || data < -(2 ** 31) || data >= 2 ** 32)
      throw new GrngError('foldIn', `data ${data} must be an integer in [-2^31, 2^32)`);
    d = scalar(data | 0, 'i32');
  } else if (data instanceof Tensor && data.dtype === 'i32' && data.rank === 0) d = data;
  else
    throw new GrngError(
      'foldIn',
      `data must be a number or an i32 scalar tensor, got ${describe(data)}; ` +
        `cast a step counter with cast(t, 'i32')`,
    );
  const [k0, k1] = keyWords('foldIn', key);
  const [w0, w1] = threefry2x32(k0, k1, scalar(FOLD, 'i32'), d);
  return stack(w0, w1);
}

// ---------------------------------------------------------------------------------------------
// Samplers

/** 32 random bits per element of `shape`, as i32 (both Threefry words xor'ed, as JAX does). */
export function randomBits<const S extends Shape>(key: Key, shape: S): Tensor<[...S]> {
  return bitsFor('randomBits', key, shape) as Tensor<[...S]>;
}

/** randomBits, with errors (a bad key or shape) naming `op`, the sampler the caller called. */
function bitsFor(op: string, key: Key, shape: Shape): Tensor {
  const [w0, w1] = words(op, key, shape, BITS);
  return bitXor(w0, w1);
}

/**
 * The top 24 bits of `bits` as k·2^-24 in [0, 1): exact in f32, hence identical on every device.
 */
const unit = (bits: Tensor): Tensor => mul(cast(shiftRight(bits, 8), 'f32'), 2 ** -24);

/**
 * The top 23 bits with a 1 below them: (2k + 1)·2^-24 in [2^-24, 1 − 2^-24], exact in f32 and
 * strictly inside (0, 1), so logarithms of it and of 1 − it are finite.
 */
const openUnit = (bits: Tensor): Tensor =>
  mul(cast(bitOr(shiftRight(bits, 8), 1), 'f32'), 2 ** -24);

/**
 * Uniform f32 numbers in [lo, hi). With the default [0, 1) they are k·2^-24 for a uniform 24-bit k:
 * exact, so bit-identical on every device. Other ranges compute lo + (hi − lo)·u in f32 (bounds
 * rounded to f32): identical on WebGPU and the f32 interpreter unless a driver fuses the
 * multiply-add; the f64 interpreter does that arithmetic in float64. Rounding can give exactly
 * `hi`.
 */
export function uniform<const S extends Shape>(key: Key, shape: S, lo = 0, hi = 1): Tensor<[...S]> {
  if (!Number.isFinite(lo) || !Number.isFinite(hi) || !(lo < hi))
    throw new GrngError('uniform', `needs finite lo < hi, got [${lo}, ${hi})`);
  const u = unit(bitsFor('uniform', key, shape));
  if (lo === 0 && hi === 1) return u as Tensor<[...S]>;
  const [l, h] = [Math.fround(lo), Math.fround(hi)];
  return add(mul(u, Math.fround(h - l)), l) as Tensor<[...S]>;
}

/**
 * Standard normal f32 numbers by Box–Muller, r·cos θ with r = √(−2 log u₁) and θ = π(2u₂ − 1)
 * from the two Threefry words of each element (u₁, u₂ strictly inside (0, 1); θ stays in [−π, π],
 * where WGSL bounds cos's error). NOT bit-identical across devices: log, sqrt and cos differ by a
 * few ULP between the interpreter and GPUs (WGSL allows log 2^-21 absolute near 1 and cos 2^-11
 * absolute), so values agree to ~2e-6 on llvmpipe and to ~4e-3 under WGSL's worst allowances.
 * The tails are cut at |z| ≤ √(2·24·ln 2) ≈ 5.77 (probability 2^-24 per draw).
 */
export function normal<const S extends Shape>(key: Key, shape: S): Tensor<[...S]> {
  const [w0, w1] = words('normal', key, shape, BITS);
  // max(·, 0): a log within WGSL's absolute error bound may return a tiny positive value for u₁
  // near 1.
  const r = sqrt(maximum(mul(log(openUnit(w0)), -2), 0));
  const theta = mul(sub(mul(openUnit(w1), 2), 1), Math.PI);
  return mul(r, cos(theta)) as Tensor<[...S]>;
}

/**
 * Rademacher signs ±1 (f32) with probability ½ each, from the top bit: bit-identical on every
 * device (Hutchinson probes).
 */
export function rademacher<const S extends Shape>(key: Key, shape: S): Tensor<[...S]> {
  return where(ge(bitsFor('rademacher', key, shape), 0), 1, -1) as Tensor<[...S]>;
}

/**
 * Bool tensor, true with probability p (a number, rounded to f32, or an f32 tensor broadcast to
 * `shape`; shape defaults to p's). True where u < p for the exact u of `uniform`, so P(true) is p
 * rounded up to a multiple of 2^-24, and a numeric p gives identical draws on every device.
 */
export function bernoulli(key: Key, p: number | Tensor, shape?: Shape): Tensor {
  if (typeof p === 'number' && !(p >= 0 && p <= 1))
    throw new GrngError('bernoulli', `p must be in [0, 1], got ${p}`);
  if (typeof p !== 'number' && (!(p instanceof Tensor) || p.dtype !== 'f32'))
    throw new GrngError('bernoulli', `p must be a number or an f32 tensor, got ${describe(p)}`);
  const s = shape ?? (typeof p === 'number' ? [] : p.shape);
  const u = unit(bitsFor('bernoulli', key, s));
  const q = typeof p === 'number' ? Math.fround(p) : p;
  const out = u.lt(q);
  if (out.rank !== s.length || !out.shape.every((d, i) => d === s[i])) {
    throw new GrngError(
      'bernoulli',
      `p of shape ${fmtShape(typeof p === 'number' ? [] : p.shape)} does not ` +
        `broadcast to shape ${fmtShape(s)}`,
    );
  }
  return out;
}

/**
 * Uniform integers in [lo, hi) (i32): lo + (31 random bits mod (hi − lo)). The modulo leaves a
 * relative bias of at most (hi − lo)/2^31 between values (3e-5 for a span of 2^16). Bit-identical
 * on every device.
 */
export function randint<const S extends Shape>(
  key: Key,
  shape: S,
  lo: number,
  hi: number,
): Tensor<[...S]> {
  const ok = (v: number) => Number.isInteger(v) && v >= -(2 ** 31) && v < 2 ** 31;
  if (!ok(lo) || !ok(hi) || !(lo < hi) || hi - lo >= 2 ** 31) {
    throw new GrngError(
      'randint',
      `needs integers lo < hi within i32 and hi − lo < 2^31, got [${lo}, ${hi})`,
    );
  }
  const span = hi - lo;
  const x = shiftRight(bitsFor('randint', key, shape), 1); // 31 bits: non-negative, so i32 division floors
  const r = sub(x, mul(x.div(span), span));
  return add(r, lo) as Tensor<[...S]>;
}

/**
 * One class index per row of `logits` (i32, `axis` removed), with probabilities softmax(logits)
 * along `axis` (the last by default): Gumbel-max, argmax(logits − log(−log u)) with u strictly
 * inside (0, 1). Ties (in practice only rows that are all −∞) go to the highest index. Not
 * bit-identical across devices (log differs by ULPs, so a near-tie can flip), but every device
 * samples the same distribution. The perturbed scores are stored once (a sum over a singleton
 * axis materializes them) so that the max and the search for it read the same values on GPUs.
 * O(rows·classes) work.
 */
export function categorical(key: Key, logits: Tensor, axis = -1): Tensor {
  if (!(logits instanceof Tensor) || logits.dtype !== 'f32' || logits.rank === 0) {
    throw new GrngError(
      'categorical',
      `logits must be an f32 tensor of rank ≥ 1, got ${describe(logits)}`,
    );
  }
  const a = axis < 0 ? axis + logits.rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= logits.rank) {
    throw new GrngError(
      'categorical',
      `axis ${axis} is out of range for logits of shape ${fmtShape(logits.shape)}`,
    );
  }
  const u = openUnit(randomBits(key, logits.shape));
  // −log u > 0 for u < 1; the floor only guards a GPU log that rounds −log u to ≤ 0 near u = 1.
  const gumbel = neg(log(maximum(neg(log(u)), 2 ** -26)));
  const scores = sum(expandDims(add(logits, gumbel), logits.rank), logits.rank);
  const best = max(scores, a, true);
  const classes = iota(logits.shape, a, 'i32');
  return max(where(ge(scores, best), classes, -1), a);
}
