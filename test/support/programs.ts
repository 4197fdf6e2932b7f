// Random well-typed DSL programs for property tests of autodiff.
//
// A program is 1–3 f32 inputs of small mixed shapes and a list of instructions, each building a
// new value from a pool of earlier ones. Instructions are drawn as plain integers (which op,
// which operand, which parameters) and resolved against the shapes of the pool, taking every
// choice modulo the number of compatible candidates: every draw is well-typed, and shrinking
// integers towards 0 shrinks towards simpler choices while the program stays valid.
// Input values come from an integer seed fed to `prng` (uniform in [-1.5, 1.5]), never from
// fc.double, whose bias towards 0 and towards equal values would put points on kinks.
import fc from 'fast-check';
import { afterAll } from 'vitest';
import type { ArgSpec } from './host-function.js';
import {
  abs,
  broadcastTo,
  concat,
  constant,
  cos,
  div,
  erf,
  exp,
  expandDims,
  flatten,
  gelu,
  grad,
  input,
  log,
  logSoftmax,
  logsumexp,
  matmul,
  max,
  maximum,
  mean,
  min,
  minimum,
  mT,
  mul,
  neg,
  pow,
  recip,
  relu,
  reshape,
  rsqrt,
  sigmoid,
  sin,
  slice,
  softmax,
  sqrt,
  squeeze,
  sub,
  sum,
  take,
  tanh,
  transpose,
  where,
  add,
  pad,
  type Tensor,
} from '../../index.js';
import type { Node } from '../../core/ir/index.js';
import { interpret } from '../../runtime/interpreter.js';
import { prng, sizeOf, uniform } from './random.js';

type Shape = readonly number[];

/** One resolved instruction: pool indices of its operands and how to build it. */
interface Instruction {
  readonly args: readonly number[];
  readonly text: string;
  readonly shape: Shape;
  readonly build: (args: readonly Tensor[]) => Tensor;
}

/** A term of the scalar output: weight · reduce(pool[index]). */
interface Term {
  readonly index: number;
  readonly weight: number;
  readonly reduce: 'sum' | 'mean' | 'sumsq';
}

export class Program {
  constructor(
    readonly shapes: readonly Shape[],
    readonly instructions: readonly Instruction[],
    readonly terms: readonly Term[],
    readonly seed: number,
  ) {}

  get inputSizes(): number[] {
    return this.shapes.map(sizeOf);
  }
  get poolShapes(): Shape[] {
    return [...this.shapes, ...this.instructions.map((i) => i.shape)];
  }

  /** Every pool value: the inputs, then one per instruction. */
  pool(xs: readonly Tensor[]): Tensor[] {
    const pool = [...xs];
    for (const ins of this.instructions) pool.push(ins.build(ins.args.map((a) => pool[a])));
    return pool;
  }

  /** The scalar output and its gradients with respect to every input. */
  scalarAndGradients(xs: readonly Tensor[]): Tensor[] {
    const gradients = grad(
      (...u: Tensor[]) => this.scalar(u),
      xs.map((_, i) => i),
    )(...xs) as Tensor[];
    return [this.scalar(xs), ...gradients];
  }

  /** The scalar output: a weighted sum of reductions of pool values. */
  scalar(xs: readonly Tensor[]): Tensor {
    const pool = this.pool(xs);
    return this.terms
      .map(({ index, weight, reduce }): Tensor => {
        const v = pool[index];
        const r = reduce === 'sum' ? sum(v) : reduce === 'mean' ? mean(v) : sum(mul(v, v));
        return mul(r, weight);
      })
      .reduce((acc: Tensor, t: Tensor): Tensor => add(acc, t));
  }

  /** Index of the tensor output: the last non-scalar pool value (-1 when all are scalars). */
  get vectorIndex(): number {
    const shapes = this.poolShapes;
    for (let i = shapes.length - 1; i >= 0; i--) if (shapes[i].length > 0) return i;
    return -1;
  }

  /** A tree output for jvp/vjp: [last non-scalar pool value, the scalar output]. */
  vector(xs: readonly Tensor[]): Tensor[] {
    const pool = this.pool(xs);
    return [pool[this.vectorIndex], this.scalar(xs)];
  }

  /** Input values, uniform in [-1.5, 1.5], from the program's seed. */
  inputValues(): Float64Array[] {
    const rng = prng(this.seed);
    return this.shapes.map((s) => uniform(rng, sizeOf(s), -1.5, 1.5));
  }

  /** Further random vectors (tangents, cotangents) of the given sizes, from seed + salt. */
  randomVectors(sizes: readonly number[], salt: number): Float64Array[] {
    const rng = prng((this.seed ^ Math.imul(salt + 1, 0x9e3779b1)) >>> 0);
    return sizes.map((n) => uniform(rng, n, -1, 1));
  }

  toString(): string {
    const shape = (s: Shape) => `[${s.join(',')}]`;
    const lines = this.shapes.map((s, i) => `  v${i}: f32${shape(s)} (input)`);
    this.instructions.forEach((ins, k) =>
      lines.push(`  v${this.shapes.length + k} = ${ins.text}  : ${shape(ins.shape)}`),
    );
    const terms = this.terms
      .map(({ index, weight, reduce }) => `${weight}*${reduce}(v${index})`)
      .join(' + ');
    lines.push(`  out = ${terms}`);
    lines.push(`  (input seed ${this.seed})`);
    return `Program {\n${lines.join('\n')}\n}`;
  }
  [fc.toStringMethod](): string {
    return this.toString();
  }
}

// ---------------------------------------------------------------------------------------------
// Raw draws and their resolution

interface RawInstruction {
  readonly op: number;
  readonly a: number;
  readonly b: number;
  readonly p: number;
  readonly q: number;
}

interface RawProgram {
  readonly dims: readonly number[];
  readonly inputs: readonly { rank: number; ones: number }[];
  readonly instructions: readonly RawInstruction[];
  readonly terms: readonly { weight: number; reduce: number }[];
  readonly seed: number;
}

export interface ProgramOptions {
  /** At most this many instructions (at least one). */
  readonly maxInstructions?: number;
  /** At most this many inputs (1–3). */
  readonly maxInputs?: number;
  /** Largest number of elements of one input (the product of the shared dims is capped to it). */
  readonly maxInputSize?: number;
  /** Largest number of elements of any intermediate value; bigger results are skipped. */
  readonly maxValueSize?: number;
  /** Require the first input to have rank ≥ 1 (so the program has a non-scalar value). */
  readonly nonScalar?: boolean;
}

const WEIGHTS = [1, -0.5, 0.75, 2];
const POWERS = [-1.5, -0.5, 0.5, 1.5, 2, 3];
const REDUCES = ['sum', 'mean', 'sumsq'] as const;

function broadcastShape(a: Shape, b: Shape): number[] | null {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const x = a[a.length - rank + i] ?? 1;
    const y = b[b.length - rank + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) return null;
    out.push(Math.max(x, y));
  }
  return out;
}

const fmt = (s: Shape) => `[${s.join(',')}]`;
const pick = <T>(xs: readonly T[], k: number): T => xs[k % xs.length];
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

function permutations(n: number): number[][] {
  if (n === 0) return [[]];
  return permutations(n - 1).flatMap((p) =>
    range(n).map((i) => [...p.slice(0, i), n - 1, ...p.slice(i)]),
  );
}

/** Shapes of rank 1–3 with `size` elements, other than `not`. */
function reshapeTargets(size: number, not: Shape): number[][] {
  const out: number[][] = [];
  const divisors = range(size)
    .map((i) => i + 1)
    .filter((d) => size % d === 0);
  for (const d of divisors) {
    out.push([d, size / d]);
    for (const e of divisors) if ((size / d) % e === 0) out.push([d, e, size / d / e]);
  }
  out.unshift([size]);
  return out.filter((s) => s.join(',') !== not.join(','));
}

type Builder = (
  x: number,
  r: RawInstruction,
  shapes: readonly Shape[],
) => Omit<Instruction, 'shape'> | null;

const unary =
  (name: string, f: (x: Tensor) => Tensor): Builder =>
  (x) => ({ args: [x], text: name.replaceAll('$x', `v${x}`), build: ([t]) => f(t) });
// x² + 1 ≥ 1: inside every domain, away from poles
const guarded = (t: Tensor) => add(mul(t, t), 1);

/** Operand candidates `y` for a broadcasting binary op on `x`. */
function partners(x: number, shapes: readonly Shape[], allowSelf: boolean): number[] {
  return range(shapes.length).filter(
    (y) => (allowSelf || y !== x) && broadcastShape(shapes[x], shapes[y]) !== null,
  );
}

const binary =
  (name: string, allowSelf: boolean, f: (x: Tensor, y: Tensor) => Tensor): Builder =>
  (x, r, shapes) => {
    const ys = partners(x, shapes, allowSelf);
    if (ys.length === 0) return null;
    const y = pick(ys, r.b);
    return {
      args: [x, y],
      text: name.replaceAll('$x', `v${x}`).replaceAll('$y', `v${y}`),
      build: ([s, t]) => f(s, t),
    };
  };

const reduction =
  (name: 'sum' | 'mean' | 'max' | 'min'): Builder =>
  (x, r, shapes) => {
    const rank = shapes[x].length;
    if (rank === 0) return null;
    const choice = r.p % (rank + 1);
    const axis = choice === rank ? undefined : choice;
    const keep = r.q % 2 === 1;
    const f = { sum, mean, max, min }[name];
    const text = `${name}(v${x}${axis === undefined ? '' : `, axis=${axis}`}${keep ? ', keepdims' : ''})`;
    return { args: [x], text, build: ([t]) => f(t, axis, keep) };
  };

/** The instruction set. */
const OPS: readonly Builder[] = [
  unary('log($x*$x+1)', (t) => log(guarded(t))),
  unary('sqrt($x*$x+1)', (t) => sqrt(guarded(t))),
  unary('rsqrt($x*$x+1)', (t) => rsqrt(guarded(t))),
  unary('recip($x*$x+1)', (t) => recip(guarded(t))),
  (x, r) => {
    const c = pick(POWERS, r.p);
    return { args: [x], text: `pow(v${x}*v${x}+1, ${c})`, build: ([t]) => pow(guarded(t), c) };
  },
  // A tensor exponent too (squashed to (-1, 1)): exercises ∂/∂exponent = log(base)·out.
  binary('pow($x*$x+1, tanh($y))', true, (s, t) => pow(guarded(s), tanh(t))),
  unary('exp(tanh($x))', (t) => exp(tanh(t))),
  unary('sin($x)', sin),
  unary('cos($x)', cos),
  unary('tanh($x)', tanh),
  unary('erf($x)', erf),
  (x, r) =>
    r.p % 2 === 0
      ? { args: [x], text: `gelu(v${x})`, build: ([t]) => gelu(t) }
      : { args: [x], text: `gelu(v${x}, 'tanh')`, build: ([t]) => gelu(t, 'tanh') },
  // take: rows of v_x (axis 0) at constant ids of shape [n] or [n, 2], drawn from r.p and r.q in
  // [−1, rows] so that some are out of range (they clamp) and some repeat (cotangents add up).
  (x, r, shapes) => {
    const s = shapes[x];
    if (s.length === 0) return null;
    const idsShape = r.q % 2 === 0 ? [1 + ((r.q >> 1) % 3)] : [1 + ((r.q >> 1) % 3), 2];
    const rng = prng(r.p);
    const ids = Array.from({ length: sizeOf(idsShape) }, () => Math.floor(rng() * (s[0] + 2)) - 1);
    const rows = idsShape.length === 1 ? ids : ids.map((_, k) => ids.slice(2 * k, 2 * k + 2));
    return {
      args: [x],
      text: `take(v${x}, ${JSON.stringify(rows.slice(0, idsShape[0]))})`,
      build: ([t]) => take(t, constant(ids, idsShape, 'i32')),
    };
  },
  unary('abs($x)', abs),
  unary('neg($x)', neg),
  unary('relu($x)', relu),
  unary('sigmoid($x)', sigmoid),
  binary('$x + $y', true, add),
  binary('$x - $y', true, sub),
  binary('$x * $y', true, mul),
  binary('$x / ($y*$y+0.5)', true, (s, t) => div(s, add(mul(t, t), 0.5))),
  // maximum/minimum may take the operand itself (or an equal node): an exact, persistent tie,
  // where the derivative must split ½/½ to be right; or a constant threshold.
  (x, r, shapes) =>
    r.p % 3 === 0
      ? { args: [x], text: `maximum(v${x}, 0.25)`, build: ([t]) => maximum(t, 0.25) }
      : binary('maximum($x, $y)', true, maximum)(x, r, shapes),
  (x, r, shapes) =>
    r.p % 3 === 0
      ? { args: [x], text: `minimum(v${x}, -0.25)`, build: ([t]) => minimum(t, -0.25) }
      : binary('minimum($x, $y)', true, minimum)(x, r, shapes),
  // where against the operand itself would be trivial: another operand is needed.
  (x, r, shapes) =>
    r.p % 2 === 0
      ? binary('where($x > $y, $x, $y)', false, (s, t) => where(s.gt(t), s, t))(x, r, shapes)
      : binary('where($x < $y, sin($x), $y*$y)', false, (s, t) =>
          where(s.lt(t), sin(s), mul(t, t)),
        )(x, r, shapes),
  reduction('sum'),
  reduction('mean'),
  reduction('max'),
  reduction('min'),
  // matmul: x @ yᵀ for y whose last axis matches x's and whose batch axes broadcast with x's.
  (x, r, shapes) => {
    const sx = shapes[x];
    if (sx.length === 0) return null;
    const ys = range(shapes.length).filter((y) => {
      const sy = shapes[y];
      return (
        sy.length > 0 &&
        sy[sy.length - 1] === sx[sx.length - 1] &&
        broadcastShape(sx.slice(0, -2), sy.slice(0, -2)) !== null
      );
    });
    if (ys.length === 0) return null;
    const y = pick(ys, r.b);
    const vector = shapes[y].length === 1;
    return {
      args: [x, y],
      text: vector ? `v${x} @ v${y}` : `v${x} @ v${y}.mT`,
      build: ([s, t]) => matmul(s, vector ? t : mT(t)),
    };
  },
  (x, r, shapes) => {
    const rank = shapes[x].length;
    if (rank < 2) return null;
    const perm = pick(permutations(rank).slice(1), r.p);
    return {
      args: [x],
      text: `transpose(v${x}, [${perm.join(',')}])`,
      build: ([t]) => transpose(t, perm),
    };
  },
  (x, r, shapes) => {
    const s = shapes[x];
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
  // broadcastTo with a new leading axis; sometimes reduced right away by max/min over it, whose
  // copies tie exactly: the derivative must be shared among them (summing back to 1).
  (x, r, shapes) => {
    const s = shapes[x];
    if (s.length >= 3) return null;
    const target = [2 + (r.p % 2), ...s];
    const text = `broadcastTo(v${x}, ${fmt(target)})`;
    const reduce = [null, null, 'max', 'min'][r.q % 4];
    if (reduce === 'max')
      return {
        args: [x],
        text: `max(${text}, axis=0)`,
        build: ([t]) => max(broadcastTo(t, target), 0),
      };
    if (reduce === 'min')
      return {
        args: [x],
        text: `min(${text}, axis=0)`,
        build: ([t]) => min(broadcastTo(t, target), 0),
      };
    return { args: [x], text, build: ([t]) => broadcastTo(t, target) };
  },
  (x, r, shapes) => {
    const s = shapes[x];
    const windows = s.flatMap((d, axis) =>
      range(d).flatMap((lo) =>
        range(d + 1)
          .filter((hi) => hi > lo && hi - lo < d)
          .map((hi) => ({ axis, lo, hi })),
      ),
    );
    if (windows.length === 0) return null;
    const { axis, lo, hi } = pick(windows, r.p);
    const starts = s.map((_, i) => (i === axis ? lo : 0));
    const ends = s.map((d, i) => (i === axis ? hi : d));
    const text = `v${x}[${s.map((_, i) => (i === axis ? `${lo}:${hi}` : ':')).join(', ')}]`;
    return { args: [x], text, build: ([t]) => slice(t, starts, ends) };
  },
  (x, r, shapes) => {
    const s = shapes[x];
    if (s.length === 0) return null;
    const axis = r.p % s.length;
    const [l, h] = pick(
      [
        [1, 0],
        [0, 1],
        [1, 1],
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
  (x, r, shapes) => {
    const s = shapes[x];
    const pairs = range(shapes.length).flatMap((y) =>
      range(s.length)
        .filter(
          (axis) =>
            shapes[y].length === s.length && shapes[y].every((d, i) => i === axis || d === s[i]),
        )
        .map((axis) => ({ y, axis })),
    );
    if (pairs.length === 0) return null;
    const { y, axis } = pick(pairs, r.b);
    return {
      args: [x, y],
      text: `concat([v${x}, v${y}], axis=${axis})`,
      build: ([s0, t]) => concat([s0, t], axis),
    };
  },
  (x, r, shapes) => {
    const s = shapes[x];
    const ones = range(s.length).filter((i) => s[i] === 1);
    if (ones.length > 0 && r.q % 2 === 1) {
      const axis = pick(ones, r.p);
      return { args: [x], text: `squeeze(v${x}, ${axis})`, build: ([t]) => squeeze(t, axis) };
    }
    if (s.length >= 3) return null;
    const axis = r.p % (s.length + 1);
    return { args: [x], text: `expandDims(v${x}, ${axis})`, build: ([t]) => expandDims(t, axis) };
  },
  (x, r, shapes) => {
    const rank = shapes[x].length;
    if (rank === 0) return null;
    const axis = r.p % rank;
    return r.q % 2 === 0
      ? { args: [x], text: `softmax(v${x}, ${axis})`, build: ([t]) => softmax(t, axis) }
      : { args: [x], text: `logSoftmax(v${x}, ${axis})`, build: ([t]) => logSoftmax(t, axis) };
  },
  (x, r, shapes) => {
    const rank = shapes[x].length;
    if (rank === 0) return null;
    const axis = r.p % rank;
    const keep = r.q % 2 === 1;
    return {
      args: [x],
      text: `logsumexp(v${x}, ${axis}${keep ? ', keepdims' : ''})`,
      build: ([t]) => logsumexp(t, axis, keep),
    };
  },
];

/** Shape of an instruction's result, found by tracing it on symbolic inputs. */
function traceShape(ins: Omit<Instruction, 'shape'>, shapes: readonly Shape[]): Shape {
  return ins.build(ins.args.map((a, i) => input(`shape_probe_${i}`, shapes[a], 'f32'))).shape;
}

function resolve(raw: RawProgram, options: Required<ProgramOptions>): Program {
  // Shared dims make broadcasting partners common; their product is capped to keep inputs small.
  const dims = [...raw.dims];
  while (sizeOf(dims) > options.maxInputSize) dims[dims.indexOf(Math.max(...dims))]--;
  const shapes: Shape[] = raw.inputs.map(({ rank, ones }, k) => {
    const r = options.nonScalar && k === 0 ? Math.max(rank, 1) : rank;
    return dims.slice(3 - r).map((d, i) => ((ones >> i) & 1 ? 1 : d));
  });
  const nInputs = shapes.length;
  const instructions: Instruction[] = [];
  for (const r of raw.instructions) {
    const pool = [...shapes, ...instructions.map((i) => i.shape)];
    const x = r.a % pool.length;
    // The drawn op, or else the next one that applies to v_x with a result of acceptable size
    // (unary ops always apply, so every draw yields an instruction).
    for (let k = 0; k < OPS.length; k++) {
      const made = OPS[(r.op + k) % OPS.length](x, r, pool);
      if (made === null) continue;
      const shape = traceShape(made, pool);
      if (sizeOf(shape) > options.maxValueSize || shape.length > 4) continue;
      instructions.push({ ...made, shape });
      break;
    }
  }
  // Every sink (a pool value no instruction consumes) feeds the output, so no instruction is dead.
  const used = new Set(instructions.flatMap((i) => i.args));
  const sinks = range(nInputs + instructions.length).filter((i) => !used.has(i));
  const terms: Term[] = sinks.map((index, k) => {
    const t = raw.terms[k % raw.terms.length];
    return {
      index,
      weight: WEIGHTS[t.weight % WEIGHTS.length],
      reduce: REDUCES[t.reduce % REDUCES.length],
    };
  });
  return new Program(shapes, instructions, terms, raw.seed);
}

/** Random well-typed programs (see the file comment). */
export function programArb(options: ProgramOptions = {}): fc.Arbitrary<Program> {
  const o: Required<ProgramOptions> = {
    maxInstructions: 12,
    maxInputs: 3,
    maxInputSize: 12,
    maxValueSize: 48,
    nonScalar: false,
    ...options,
  };
  const dim = fc.integer({ min: 1, max: 3 });
  const choice = fc.nat({ max: 1 << 16 });
  const raw: fc.Arbitrary<RawProgram> = fc.record({
    dims: fc.tuple(dim, dim, dim),
    // Mostly full shapes; sometimes size-1 axes (bit i of `ones`), which broadcasting stretches.
    inputs: fc.array(
      fc.record({
        rank: fc.integer({ min: 0, max: 3 }),
        ones: fc.oneof(
          { arbitrary: fc.constant(0), weight: 2 },
          { arbitrary: fc.nat({ max: 7 }), weight: 1 },
        ),
      }),
      { minLength: 1, maxLength: o.maxInputs, size: 'max' },
    ),
    instructions: fc.array(
      fc.record({
        op: fc.nat({ max: OPS.length - 1 }),
        a: choice,
        b: choice,
        p: choice,
        q: choice,
      }),
      { minLength: 1, maxLength: o.maxInstructions, size: 'max' },
    ),
    terms: fc.array(
      fc.record({
        weight: fc.nat({ max: WEIGHTS.length - 1 }),
        reduce: fc.nat({ max: REDUCES.length - 1 }),
      }),
      {
        minLength: 1,
        maxLength: 3,
      },
    ),
    seed: fc.nat(),
  });
  return raw.map((r) => resolve(r, o));
}

// ---------------------------------------------------------------------------------------------
// Kinks

/**
 * Distance of the program's evaluation from its nearest kink, over every non-smooth node that
 * reaches an output other than through stopGradient (logsumexp's shift by a stopped max is
 * smooth): |a − b| for max/min and comparisons, |x| for abs/sign, and for reduceMax the gap
 * between each group's maximum and its largest smaller element.
 *
 * Exact equalities (gap 0) are structural — the same value computed twice, a relu's 0 met by
 * another 0, a broadcast copied along the reduced axis — not coincidences of random inputs, and
 * they persist under small perturbations, where autodiff's equal split of ties is exact. They do
 * not count as kinks; only near-misses 0 < gap < margin do.
 */
export function kinkMargin(
  f: (xs: Tensor[]) => Tensor | readonly Tensor[],
  shapes: readonly Shape[],
  values: readonly Float64Array[],
): number {
  const names = shapes.map((_, i) => `kink_${i}`);
  const out = f(shapes.map((s, i) => input(names[i], s, 'f32')));
  const outputs = (Array.isArray(out) ? out : [out]).map((t: Tensor) => t.node);
  const live = new Set<number>();
  const stack = [...outputs];
  while (stack.length > 0) {
    const n = stack.pop() as Node;
    if (live.has(n.id)) continue;
    live.add(n.id);
    if (n.op !== 'stopGradient') stack.push(...n.inputs);
  }
  const seen = new Map<number, Float64Array>();
  let margin = Infinity;
  const gap = (d: number) => {
    if (d !== 0 && Number.isFinite(d)) margin = Math.min(margin, Math.abs(d));
  };
  interpret(outputs, new Map(names.map((n, i) => [n, values[i]] as const)), {
    onNode: (node, value) => {
      seen.set(node.id, value);
      if (!live.has(node.id)) return;
      const ins = node.inputs.map((n) => seen.get(n.id) as Float64Array);
      switch (node.op) {
        case 'max':
        case 'min':
        case 'lt':
        case 'le':
        case 'gt':
        case 'ge':
        case 'eq':
        case 'ne':
          if (node.inputs[0].dtype === 'f32') ins[0].forEach((a, i) => gap(a - ins[1][i]));
          break;
        case 'abs':
        case 'sign':
          ins[0].forEach(gap);
          break;
        case 'floor':
          ins[0].forEach((a) => gap(a - Math.round(a)));
          break;
        case 'reduceMax':
          reduceMaxGaps(node as Node<'reduceMax'>, ins[0], value).forEach(gap);
          break;
        default:
      }
    },
  });
  return margin;
}

/** Per reduced group: its maximum minus its largest smaller element (0 when there is none). */
function reduceMaxGaps(
  node: Node<'reduceMax'>,
  x: Float64Array,
  maxima: Float64Array,
): Float64Array {
  const inShape = node.inputs[0].shape;
  const { axes } = node.attrs;
  const second = new Float64Array(maxima.length).fill(-Infinity);
  for (let i = 0; i < x.length; i++) {
    // Row-major index of the group: the input index with the reduced axes dropped.
    let rest = i;
    let group = 0;
    let stride = 1;
    for (let d = inShape.length - 1; d >= 0; d--) {
      const c = rest % inShape[d];
      rest = Math.floor(rest / inShape[d]);
      if (!axes.includes(d)) {
        group += c * stride;
        stride *= inShape[d];
      }
    }
    if (x[i] < maxima[group]) second[group] = Math.max(second[group], x[i]);
  }
  return maxima.map((m, g) => (second[g] === -Infinity ? 0 : m - second[g]));
}

// ---------------------------------------------------------------------------------------------
// Test bookkeeping shared by the autodiff suites

/** Per-property counters, printed after a suite: cases seen, discarded near kinks, worst error. */
export class PropertyStats {
  runs = 0;
  discarded = 0;
  worst = 0;
  constructor(
    readonly name: string,
    /** What `worst` measures, for the report. */
    readonly measure = 'error',
  ) {}

  /** Records an error measure (the largest is reported). */
  error(e: number): number {
    this.worst = Math.max(this.worst, e);
    return e;
  }

  /** Counts the case and discards it (fc.pre) when `f` is within `margin` of a kink at `values`. */
  skipNearKinks(
    f: (xs: Tensor[]) => Tensor | readonly Tensor[],
    shapes: readonly Shape[],
    values: readonly Float64Array[],
    margin: number,
  ): void {
    this.runs++;
    if (kinkMargin(f, shapes, values) < margin) {
      this.discarded++;
      fc.pre(false);
    }
  }

  toString(): string {
    const rate = this.runs === 0 ? 0 : this.discarded / this.runs;
    return (
      `${this.name}: ${this.runs} cases, ${this.discarded} discarded near ` +
      `kinks (${(100 * rate).toFixed(1)}%), worst ${this.measure} ` +
      `${this.worst.toExponential(2)}`
    );
  }
}

/** Unit roundoff of float64 (ε ≈ 1.1e-16). */
/**
 * A per-file registry of PropertyStats, printed after the file's tests (counts include
 * fast-check's shrinking attempts when a property fails).
 */
export function propertyStatsTracker(): (name: string, measure?: string) => PropertyStats {
  const stats: PropertyStats[] = [];
  afterAll(() => stats.forEach((s) => console.log(String(s))));
  return (name, measure) => {
    const s = new PropertyStats(name, measure);
    stats.push(s);
    return s;
  };
}

/** One f32 argument spec per input shape. */
export const specsOf = (shapes: readonly (readonly number[])[]): ArgSpec[] =>
  shapes.map((shape) => ({ shape }));

export const EPS = 2 ** -53;
/**
 * Roundings one evaluation of a program may accumulate, relative to |value|: graphs here are
 * at most a few hundred nodes deep, and rounding errors add up at worst linearly.
 */
export const ROUNDING_DEPTH = 100;

/**
 * Worst ratio, over components, of |analytic − numeric| to what a finite difference may be off
 * by: tol·max(1, |numeric|) (truncation, relative where large and absolute near 0) plus
 * rounding·|value| (float64 rounding of the differenced function, which scales with its own
 * magnitude |value| and not with its derivative's: e.g. ROUNDING_DEPTH·ε/h for a central
 * difference). A result ≤ 1 passes. `value` is one number, or one per component.
 */
export function fdExcess(
  analytic: ArrayLike<number>,
  numeric: ArrayLike<number>,
  value: number | ArrayLike<number>,
  rounding: number,
  tol: number,
): number {
  let worst = 0;
  for (let i = 0; i < numeric.length; i++) {
    const v = typeof value === 'number' ? value : value[i];
    const allowed = tol * Math.max(1, Math.abs(numeric[i])) + rounding * Math.abs(v);
    worst = Math.max(worst, Math.abs(analytic[i] - numeric[i]) / allowed);
  }
  return worst;
}

/** The concatenation of flat arrays (several tensors as one vector). */
export function concatAll(xs: readonly Float64Array[]): Float64Array {
  const out = new Float64Array(xs.reduce((n, x) => n + x.length, 0));
  let k = 0;
  for (const x of xs) {
    out.set(x, k);
    k += x.length;
  }
  return out;
}

/** Splits a flat vector back into pieces of the given sizes. */
export function splitAs(flat: Float64Array, sizes: readonly number[]): Float64Array[] {
  let k = 0;
  return sizes.map((n) => flat.slice(k, (k += n)));
}
