// grng's counter-based random numbers (dsl/random.ts) recomputed in plain JavaScript, so that a
// float64 reference optimizer can draw exactly the numbers a compiled step drew from the same key.
//
// A compiled step (compileOptimizer, compileTrainStep, the Trainer) hands the optimizer the key
// ctx.key = foldIn(prngKey(seed), t): `seed` is the `seed` option (default 0) and t = 1, 2, … the
// step number (runtime/compile-optimizer.ts, applyUpdate). `stepKey(seed, t)` below is that key;
// calling these functions with it, or with a key derived from it as the optimizer derives its own,
// gives the same draws. The built-in optimizers derive these keys from ctx.key:
//
// | optimizer (setting)              | draw                             | key                    |
// | -------------------------------- | -------------------------------- | ---------------------- |
// | kfac, ring, reng (fisher 'mc')   | labels: categorical(·, output)   | foldIn(ctx.key, 1)     |
// | sophia (estimator 'gnb')         | labels: categorical(·, output)   | foldIn(ctx.key, 1)     |
// | sophia (estimator 'hutchinson')  | leaf i's probe: normal(·, shape) | foldIn(ctx.key, i + 2) |
// | fisher 'empirical', rkalman, sgd, adam, adamw: no draws                                    |
//
// Here: mcLabelKey(stepKey(seed, t)) is foldIn(ctx.key, 1), hutchinsonProbeKey(stepKey(seed, t),
// i) is foldIn(ctx.key, i + 2).
//
// `output` is the model's logits at the current parameters ([batch, classes], classes last);
// leaf i counts the parameter tree's leaves in flattenTree order (arrays by index, objects by
// sorted key). partition() and chain() pass ctx.key on unchanged, and partition gives each group
// its own leaves as a list, so i counts within the group. Optimizers that draw nothing need none
// of this. No built-in optimizer uses rademacher, uniform, bernoulli or randint today; they are
// here for user optimizers, with the DSL's semantics.
//
// Values match the float64 interpreter (new CpuDevice('f64')) exactly: the integer hash and the
// default uniform are exact everywhere; normal, categorical and uniform on other ranges are the
// interpreter's float64 formulas with the same Math functions, so they are bit-identical to it in
// the same JS engine (on float32 devices they differ by float32 rounding, as dsl/random.ts says).
import { fmtShape, GrngError } from '../core/errors.js';

/** A key: the two 32-bit words of the DSL's i32 [2] key tensor, as signed int32 numbers. */
export type Key = readonly [number, number];

/** Threefish's key-schedule parity constant (Threefry's third key word is k0 ^ k1 ^ this). */
const PARITY = 0x1bd11bda;
/** Rotation amounts of rounds 0–7; rounds 8–19 repeat them. */
const ROTATE = [13, 15, 26, 6, 17, 29, 16, 24] as const;
// Counter-word domain tags of dsl/random.ts: element bits, split keys and folded keys.
const TAG_BITS = 0;
const TAG_SPLIT = 1;
const TAG_FOLD = 2;

const isWord = (v: number): boolean => Number.isInteger(v) && v >= -(2 ** 31) && v < 2 ** 32;

/**
 * Threefry-2x32-20 of the counter (c0, c1) under the key (k0, k1), on 32-bit patterns (any
 * integer is read mod 2^32); returns both output words as int32 numbers.
 */
export function threefry2x32(k0: number, k1: number, c0: number, c1: number): [number, number] {
  // NaN, a fraction or a string would be read as some other word (`| 0`), silently.
  for (const [name, w] of [
    ['k0', k0],
    ['k1', k1],
    ['c0', c0],
    ['c1', c1],
  ] as const)
    if (typeof w !== 'number' || !Number.isInteger(w))
      throw new GrngError('threefry2x32', `${name} must be an integer word, got ${String(w)}`);
  return threefry(k0, k1, c0, c1);
}

/** threefry2x32 without the argument checks, for the samplers' inner loops. */
function threefry(k0: number, k1: number, c0: number, c1: number): [number, number] {
  const k = [k0 | 0, k1 | 0, (k0 ^ k1 ^ PARITY) | 0];
  let x0 = (c0 + k[0]) | 0;
  let x1 = (c1 + k[1]) | 0;
  for (let round = 0; round < 20; round++) {
    const r = ROTATE[round % 8];
    x0 = (x0 + x1) | 0;
    x1 = ((x1 << r) | (x1 >>> (32 - r))) ^ x0;
    if (round % 4 === 3) {
      // Key injection s after every fourth round: words s and s + 1 of the schedule, plus s.
      const s = (round + 1) / 4;
      x0 = (x0 + k[s % 3]) | 0;
      x1 = (x1 + k[(s + 1) % 3] + s) | 0;
    }
  }
  return [x0, x1];
}

/** A key as given, arrays in brackets (String([0]) would print a bare 0). */
function describeKey(key: unknown): string {
  return Array.isArray(key) ? `[${key.map(String).join(', ')}]` : String(key);
}

function checkKey(op: string, key: Key): void {
  if (!Array.isArray(key) || key.length !== 2 || !key.every((w) => isWord(w)))
    throw new GrngError(
      op,
      `key must be a pair of 32-bit integer words, got ${describeKey(key)}; make one with ` +
        `prngKey(seed)`,
    );
}

/** The element count of `shape`, after checking it as dsl/random.ts does. */
function sizeOf(op: string, shape: readonly number[]): number {
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0))
    throw new GrngError(
      op,
      `shape ${describeKey(shape)} must be an array of non-negative integers`,
    );
  const n = shape.reduce((a, d) => a * d, 1);
  if (n > 2 ** 31)
    throw new GrngError(
      op,
      `shape ${fmtShape(shape)} has more than 2^31 elements; counters are i32`,
    );
  return n;
}

/** Both Threefry words of every element index i, at counters (tag, i). */
function eachWords(
  op: string,
  key: Key,
  shape: readonly number[],
  tag: number,
  f: (w0: number, w1: number, i: number) => void,
): void {
  checkKey(op, key);
  const n = sizeOf(op, shape);
  for (let i = 0; i < n; i++) {
    const [w0, w1] = threefry(key[0], key[1], tag, i);
    f(w0, w1, i);
  }
}

// ---------------------------------------------------------------------------------------------
// Keys

/** The key [0, seed]; a seed in [2^31, 2^32) is read as its 32-bit pattern, as the DSL does. */
export function prngKey(seed: number): Key {
  if (!isWord(seed))
    throw new GrngError('prngKey', `seed ${seed} must be an integer in [-2^31, 2^32)`);
  return [0, seed | 0];
}

/** `n` keys derived from `key`: key i is Threefry(key, (1, i)). */
export function split(key: Key, n = 2): Key[] {
  if (!Number.isInteger(n) || n < 1)
    throw new GrngError('split', `n must be a positive integer, got ${n}`);
  const keys: Key[] = [];
  eachWords('split', key, [n], TAG_SPLIT, (w0, w1) => keys.push([w0, w1]));
  return keys;
}

/** `key` combined with an integer: Threefry(key, (2, data)). */
export function foldIn(key: Key, data: number): Key {
  checkKey('foldIn', key);
  if (!isWord(data))
    throw new GrngError('foldIn', `data ${data} must be an integer in [-2^31, 2^32)`);
  return threefry2x32(key[0], key[1], TAG_FOLD, data);
}

// ---------------------------------------------------------------------------------------------
// Samplers (row-major over `shape`)

/** 32 random bits per element: word0 ^ word1 of Threefry(key, (0, i)). */
export function randomBits(key: Key, shape: readonly number[]): Int32Array {
  return bitsFor('randomBits', key, shape);
}

/** randomBits, with errors naming `op` (the sampler the caller called). */
function bitsFor(op: string, key: Key, shape: readonly number[]): Int32Array {
  const out = new Int32Array(sizeOf(op, shape));
  eachWords(op, key, shape, TAG_BITS, (w0, w1, i) => (out[i] = w0 ^ w1));
  return out;
}

/** k·2^-24 from the top 24 bits: in [0, 1), exact. */
const unit = (bits: number): number => (bits >>> 8) * 2 ** -24;
/** (2k + 1)·2^-24 from the top 23 bits: strictly inside (0, 1), exact. */
const openUnit = (bits: number): number => ((bits >>> 8) | 1) * 2 ** -24;

/**
 * Uniform numbers in [lo, hi): k·2^-24 for [0, 1); otherwise u·(hi − lo) + lo with the bounds and
 * their difference rounded to f32 as the DSL rounds them, and the rest in float64 (the float64
 * interpreter's arithmetic).
 */
export function uniform(key: Key, shape: readonly number[], lo = 0, hi = 1): Float64Array {
  if (!Number.isFinite(lo) || !Number.isFinite(hi) || !(lo < hi))
    throw new GrngError('uniform', `needs finite lo < hi, got [${lo}, ${hi})`);
  const u = Float64Array.from(bitsFor('uniform', key, shape), unit);
  if (lo === 0 && hi === 1) return u;
  const [l, h] = [Math.fround(lo), Math.fround(hi)];
  const width = Math.fround(h - l);
  return u.map((v) => v * width + l);
}

/**
 * Standard normals by Box–Muller on the two words of element i: √max(−2 log u₁, 0)·cos(π(2u₂ − 1))
 * with u₁, u₂ the open units of word 0 and word 1 (not of randomBits).
 */
export function normal(key: Key, shape: readonly number[]): Float64Array {
  const out = new Float64Array(sizeOf('normal', shape));
  eachWords('normal', key, shape, TAG_BITS, (w0, w1, i) => {
    const r = Math.sqrt(Math.max(Math.log(openUnit(w0)) * -2, 0));
    out[i] = r * Math.cos((openUnit(w1) * 2 - 1) * Math.PI);
  });
  return out;
}

/** ±1, the sign of the element's random bits as an int32 (+1 for 0). */
export function rademacher(key: Key, shape: readonly number[]): Float64Array {
  return Float64Array.from(bitsFor('rademacher', key, shape), (b) => (b >= 0 ? 1 : -1));
}

/**
 * 1 where uniform(key, shape) < p, else 0 (the DSL's bool tensor as a device reads it back). A
 * number p is rounded to f32 as the DSL rounds it; a Float64Array p holds one probability per
 * element of `shape` and is compared as given (the float64 interpreter does not round inputs; to
 * mirror a float32 device pass Math.fround'ed values).
 */
export function bernoulli(
  key: Key,
  p: number | Float64Array,
  shape: readonly number[] = [],
): Float64Array {
  const u = Float64Array.from(bitsFor('bernoulli', key, shape), unit); // uniform(key, shape)
  if (typeof p === 'number') {
    if (!(p >= 0 && p <= 1)) throw new GrngError('bernoulli', `p must be in [0, 1], got ${p}`);
    const q = Math.fround(p);
    return u.map((v) => (v < q ? 1 : 0));
  }
  if (!(p instanceof Float64Array) || p.length !== u.length)
    throw new GrngError(
      'bernoulli',
      `p must be a number or a Float64Array of ${u.length} values (shape ${fmtShape(shape)})`,
    );
  return u.map((v, i) => (v < p[i] ? 1 : 0));
}

/** Integers in [lo, hi): lo + (the top 31 random bits mod (hi − lo)). */
export function randint(key: Key, shape: readonly number[], lo: number, hi: number): Int32Array {
  const ok = (v: number) => Number.isInteger(v) && v >= -(2 ** 31) && v < 2 ** 31;
  if (!ok(lo) || !ok(hi) || !(lo < hi) || hi - lo >= 2 ** 31)
    throw new GrngError(
      'randint',
      `needs integers lo < hi within i32 and hi − lo < 2^31, got [${lo}, ${hi})`,
    );
  return bitsFor('randint', key, shape).map((b) => lo + ((b >>> 1) % (hi - lo)));
}

/**
 * One class per row of `logits` (row-major, of `shape`) along `axis`, as the DSL's Gumbel-max:
 * the highest index j whose score logits[j] − log(max(−log u_j, 2^-26)) equals the row's maximum,
 * with u_j the open unit of element j's random bits (randomBits over the whole of `shape`). A row
 * with a NaN score gets −1, as the interpreter gives it. The result has `shape` without `axis`.
 */
export function categorical(
  key: Key,
  logits: Float64Array,
  shape: readonly number[],
  axis = -1,
): Int32Array {
  const n = sizeOf('categorical', shape);
  if (shape.length === 0 || !(logits instanceof Float64Array) || logits.length !== n)
    throw new GrngError(
      'categorical',
      `logits must be a Float64Array of the ${n} values of shape ${fmtShape(shape)} (rank ≥ 1)`,
    );
  const a = axis < 0 ? axis + shape.length : axis;
  if (!Number.isInteger(a) || a < 0 || a >= shape.length)
    throw new GrngError('categorical', `axis ${axis} is out of range for shape ${fmtShape(shape)}`);
  const classes = shape[a];
  const inner = shape.slice(a + 1).reduce((p, d) => p * d, 1);
  const outer = shape.slice(0, a).reduce((p, d) => p * d, 1);
  // Rows without classes: the DSL's empty max gives −∞ (interpreter) or −2^31 (WebGPU), no label.
  if (classes === 0 && outer * inner > 0)
    throw new GrngError('categorical', `axis ${axis} of shape ${fmtShape(shape)} has no classes`);
  const bits = bitsFor('categorical', key, shape);
  const score = (i: number) =>
    logits[i] - Math.log(Math.max(-Math.log(openUnit(bits[i])), 2 ** -26));
  const out = new Int32Array(outer * inner);
  const scores = new Float64Array(classes);
  for (let o = 0; o < outer; o++) {
    for (let k = 0; k < inner; k++) {
      let best = -Infinity;
      for (let j = 0; j < classes; j++) {
        scores[j] = score((o * classes + j) * inner + k);
        best = Math.max(best, scores[j]); // NaN if any score is (the interpreter's max too)
      }
      let label = -1;
      for (let j = 0; j < classes; j++) if (scores[j] >= best) label = j;
      out[o * inner + k] = label;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The keys of compiled steps and of the built-in optimizers' draws (the table at the top)

/**
 * ctx.key of step t (1, 2, …) of a step compiled with `seed`: foldIn(prngKey(seed), t). The step
 * passes seed and t as f32 and casts them to i32, so both must be integers of magnitude ≤ 2^24
 * (larger ones would be rounded to f32 first on float32 devices).
 */
export function stepKey(seed: number, t: number): Key {
  for (const [name, v] of [
    ['seed', seed],
    ['t', t],
  ] as const)
    if (!Number.isInteger(v) || Math.abs(v) > 2 ** 24)
      throw new GrngError('stepKey', `${name} ${v} must be an integer of magnitude ≤ 2^24`);
  return foldIn(prngKey(seed), t);
}

/** foldIn data of the Monte-Carlo labels (kronecker.ts fisherTaps, sophia's GNB estimator). */
export const MC_LABEL_DATA = 1;
/** foldIn data of Sophia's Hutchinson probe of leaf 0; leaf i uses this + i. */
export const HUTCHINSON_PROBE_DATA = 2;

/**
 * The key of the labels sampled from the model, categorical(key, output) with classes last: K-FAC,
 * RING and RENG with fisher 'mc', and Sophia with estimator 'gnb'.
 */
export function mcLabelKey(step: Key): Key {
  checkKey('mcLabelKey', step);
  return foldIn(step, MC_LABEL_DATA);
}

/** The key of Sophia's Hutchinson probe normal(key, shape) of parameter leaf `leaf` (from 0). */
export function hutchinsonProbeKey(step: Key, leaf: number): Key {
  if (!Number.isInteger(leaf) || leaf < 0)
    throw new GrngError('hutchinsonProbeKey', `leaf must be a non-negative integer, got ${leaf}`);
  checkKey('hutchinsonProbeKey', step);
  return foldIn(step, HUTCHINSON_PROBE_DATA + leaf);
}
