// Random well-typed programs for fuzzing the compiler (scripts/fuzz-compiler.ts and
// test/compiler/fuzz-sample.test.ts): like programs.ts, but over every dtype (f32, i32, bool),
// most of the DSL's public ops (fuzz-ops.ts), odd shapes and four size classes:
// - small: dims from {0, 1, 2, 3, 4, 5, 7}, ≤ 10 instructions;
// - medium: dims up to 4099 (1, primes, 257, powers of two and their neighbours), ≤ 300k inputs;
// - large: one axis of 65537 … 16777259 elements: elementwise kernels past 65535 workgroups of 64
//   (4.19M elements, or 16.8M on vec4s), long reductions, > 65535 wide-reduction workgroups;
// - huge: an input of 33554467 f32 (134,217,868 bytes), past maxStorageBufferBindingSize (128 MiB).
// A program returns its sinks (values no instruction reads) and a few other values, and sometimes
// the gradient of a scalar made of its f32 sinks with respect to its f32 inputs. How it is run
// (fused or not, how inputs are passed and packed, which are donated) is drawn with it.
// Instructions are drawn as integers resolved against the pool of earlier values (see
// fuzz-ops.ts), so every draw is valid and shrinking simplifies programs.
import fc from 'fast-check';
import { add, grad, input, mean, mul, sum, type Tensor } from '../../index.js';
import type { DType } from '../../core/ir/dtype.js';
import { GrngError } from '../../core/errors.js';
import { OPS, pick, range, type Made, type RawInstruction, type Value } from './fuzz-ops.js';
import { prng, sizeOf } from './random.js';

export type SizeClass = 'small' | 'medium' | 'large' | 'huge';

interface ClassSpec {
  /** Axis sizes inputs are made of (large and huge: the long axis, then the others). */
  readonly dims: readonly number[];
  readonly long?: readonly number[];
  readonly maxInstructions: number;
  readonly maxInput: number;
  readonly maxValue: number;
  /** Element operations one instruction may cost (a product's m·n·k, a virtual broadcast). */
  readonly maxWork: number;
}

const CLASSES: Readonly<Record<SizeClass, ClassSpec>> = {
  small: {
    dims: [1, 2, 3, 5, 7, 4, 0],
    maxInstructions: 10,
    maxInput: 210,
    maxValue: 4096,
    maxWork: 1e5,
  },
  medium: {
    dims: [1, 3, 17, 31, 64, 65, 127, 257, 1023, 1025, 4099],
    maxInstructions: 6,
    maxInput: 300_000,
    maxValue: 600_000,
    maxWork: 8e6,
  },
  large: {
    dims: [1, 2, 3],
    long: [65537, 262147, 1048583, 4194319, 4194319, 5000011, 5000011, 16777259],
    maxInstructions: 4,
    // The float32 interpreter and the error analysis take ~10 s per million elements of a
    // program with its gradient: inputs stay near 5M, or the long axis alone.
    maxInput: 5_200_000,
    maxValue: 5_200_000,
    maxWork: 7e7,
  },
  huge: {
    dims: [1],
    long: [33_554_467],
    maxInstructions: 2,
    maxInput: 33_554_467,
    maxValue: 33_554_467,
    maxWork: 7e7,
  },
};

/** An input: its type, and whether a scalar is passed to jit as a JS number. */
export interface FuzzInput extends Value {
  readonly asNumber: boolean;
}

interface Instruction extends Made {
  readonly value: Value;
}

/** A term of the differentiated scalar: weight · reduce(pool[index]). */
interface Term {
  readonly index: number;
  readonly weight: number;
  readonly reduce: 'sum' | 'mean' | 'sumsq';
}

/** How the program is run on the device. */
export interface RunSpec {
  readonly fuse: boolean;
  /** Arguments as device arrays of their own, packed by uploadAll, or host arrays for jit. */
  readonly layout: 'separate' | 'packed' | 'host';
  /** Positions of donated arguments (jit's donate). */
  readonly donate: readonly number[];
}

/** How input values are drawn: on a grid (long sums exact) or continuous; with extreme i32s. */
export interface DataSpec {
  readonly grid: boolean;
  readonly extremeInts: boolean;
  readonly seed: number;
}

export class FuzzProgram {
  constructor(
    readonly size: SizeClass,
    readonly inputs: readonly FuzzInput[],
    readonly instructions: readonly Instruction[],
    /** Pool indices returned as values. */
    readonly returned: readonly number[],
    /** The differentiated scalar's terms (null: no gradient). */
    readonly gradient: readonly Term[] | null,
    readonly data: DataSpec,
    readonly run: RunSpec,
  ) {}

  get poolValues(): Value[] {
    return [...this.inputs, ...this.instructions.map((i) => i.value)];
  }

  /** Elements of the largest array the program holds, stored or not. */
  get largestArray(): number {
    return Math.max(
      ...this.poolValues.map((v) => sizeOf(v.shape)),
      ...this.instructions.map((i) => i.virtual ?? 0),
    );
  }

  /** Every pool value: the inputs, then one per instruction. */
  pool(xs: readonly Tensor[]): Tensor[] {
    const pool = [...xs];
    for (const ins of this.instructions) pool.push(ins.build(ins.args.map((a) => pool[a])));
    return pool;
  }

  /** Inputs that are differentiated (the f32 ones). */
  get floatInputs(): number[] {
    return range(this.inputs.length).filter((i) => this.inputs[i].dtype === 'f32');
  }

  /** The program's outputs: returned values, then (with a gradient) the scalar and its gradient. */
  outputs(xs: readonly Tensor[]): Tensor[] {
    const pool = this.pool(xs);
    const values = this.returned.map((i) => pool[i]);
    const terms = this.gradient;
    if (terms === null) return values;
    const scalar = (us: readonly Tensor[]): Tensor => {
      const p = this.pool(us);
      return terms
        .map(({ index, weight, reduce }): Tensor => {
          const v = p[index];
          const r = reduce === 'sum' ? sum(v) : reduce === 'mean' ? mean(v) : sum(mul(v, v));
          return mul(r, weight);
        })
        .reduce((acc: Tensor, t: Tensor): Tensor => add(acc, t));
    };
    const wrt = this.floatInputs;
    const grads = grad((...us: Tensor[]) => scalar(us), wrt)(...xs) as Tensor[];
    return [...values, scalar(xs), ...grads];
  }

  /** Input values (f32 numbers for f32 inputs) from the data seed. */
  inputValues(): Float64Array[] {
    const rng = prng(this.data.seed);
    const step = this.size === 'small' || this.size === 'medium' ? 0.25 : 1;
    const extremes = [-2147483648, 2147483647, -1, 0x55555555, 65536, -65537];
    return this.inputs.map(({ shape, dtype }) => {
      const n = sizeOf(shape);
      const out = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        const u = rng();
        if (dtype === 'bool') out[i] = u < 0.5 ? 1 : 0;
        else if (dtype === 'i32')
          out[i] =
            this.data.extremeInts && u < 0.1
              ? extremes[Math.floor(u * 60)]
              : Math.floor(u * 17) - 8;
        else if (this.data.grid) out[i] = step * (Math.floor(u * (4 / step + 1)) - 2 / step);
        else out[i] = Math.fround(3 * u - 1.5);
      }
      return out;
    });
  }

  toString(): string {
    const shape = (v: Value) => `${v.dtype}[${v.shape.join(',')}]`;
    const lines = this.inputs.map(
      (v, i) => `  v${i}: ${shape(v)} (input${v.asNumber ? ', passed as a number' : ''})`,
    );
    this.instructions.forEach((ins, k) =>
      lines.push(`  v${this.inputs.length + k} = ${ins.text}  : ${shape(ins.value)}`),
    );
    lines.push(`  return ${this.returned.map((i) => `v${i}`).join(', ')}`);
    if (this.gradient !== null) {
      const terms = this.gradient
        .map(({ index, weight, reduce }) => `${weight}*${reduce}(v${index})`)
        .join(' + ');
      lines.push(`  and grad of ${terms} wrt ${this.floatInputs.map((i) => `v${i}`).join(', ')}`);
    }
    const { grid, extremeInts, seed } = this.data;
    const { fuse, layout, donate } = this.run;
    lines.push(
      `  (${this.size}; data seed ${seed}${grid ? ', grid' : ''}${extremeInts ? ', extreme i32' : ''}; ` +
        `${fuse ? 'fused' : 'unfused'}, ${layout} arguments` +
        `${donate.length > 0 ? `, donating ${donate.join(',')}` : ''})`,
    );
    return `FuzzProgram {\n${lines.join('\n')}\n}`;
  }
  [fc.toStringMethod](): string {
    return this.toString();
  }
}

// ---------------------------------------------------------------------------------------------
// Raw draws and their resolution

interface RawProgram {
  readonly size: SizeClass;
  readonly dims: readonly number[];
  readonly longAt: number;
  readonly inputs: readonly { rank: number; ones: number; dtype: number; asNumber: boolean }[];
  readonly instructions: readonly RawInstruction[];
  readonly extra: number;
  readonly gradient: boolean;
  readonly terms: readonly { weight: number; reduce: number }[];
  readonly data: DataSpec;
  readonly fuse: boolean;
  readonly layout: number;
  readonly donate: number;
}

const WEIGHTS = [1, -0.5, 0.75, 2];
const REDUCES = ['sum', 'mean', 'sumsq'] as const;
const DTYPES: readonly DType[] = ['f32', 'f32', 'f32', 'f32', 'i32', 'i32', 'bool'];

/** The input shapes: suffixes of four shared dims (so broadcasting partners are common). */
function inputShapes(raw: RawProgram, spec: ClassSpec): number[][] {
  let dims = raw.dims.map((d) => pick(spec.dims, d));
  if (spec.long !== undefined) dims[raw.longAt] = pick(spec.long, raw.dims[raw.longAt]);
  // Within the class's input size: drop the largest ordinary dims to 1 (the long axis stays).
  const ordinary = range(4).filter((i) => spec.long === undefined || i !== raw.longAt);
  const limit = (ds: number[]) => sizeOf(ds.filter((d) => d > 0)) > spec.maxInput;
  while (limit(dims) && ordinary.some((i) => dims[i] > 1)) {
    const largest = [...ordinary].sort((i, j) => dims[j] - dims[i])[0];
    dims = dims.map((d, i) => (i === largest ? 1 : d));
  }
  return raw.inputs.map(({ rank, ones }, k) => {
    // The first input reaches the long axis, so large programs are large.
    const r = k === 0 && spec.long !== undefined ? Math.max(rank, 4 - raw.longAt) : rank;
    return dims.slice(4 - r).map((d, i) => ((ones >> i) & 1 && 4 - r + i !== raw.longAt ? 1 : d));
  });
}

/** Shape of an instruction's result, by tracing it on symbolic inputs (null: the DSL refused). */
function traceValue(made: Made, pool: readonly Value[]): Value | null {
  try {
    const t = made.build(
      made.args.map((a, i) => input(`probe_${i}`, pool[a].shape, pool[a].dtype)),
    );
    return { shape: t.shape, dtype: t.dtype };
  } catch (error) {
    if (error instanceof GrngError) return null;
    throw error;
  }
}

function resolve(raw: RawProgram): FuzzProgram {
  const spec = CLASSES[raw.size];
  const shapes = inputShapes(raw, spec);
  const inputs: FuzzInput[] = shapes.map((shape, k) => {
    const dtype = k === 0 ? 'f32' : pick(DTYPES, raw.inputs[k].dtype);
    // jit uploads a number as an f32 scalar
    const asNumber = shape.length === 0 && dtype === 'f32' && raw.inputs[k].asNumber;
    return { shape, dtype, asNumber };
  });
  const instructions: Instruction[] = [];
  // Values as large as the largest input (a long axis alone may pass the class's input size).
  const maxValue = Math.max(spec.maxValue, ...shapes.map(sizeOf));
  for (const r of raw.instructions.slice(0, spec.maxInstructions)) {
    const pool: Value[] = [...inputs, ...instructions.map((i) => i.value)];
    const x = r.a % pool.length;
    // The drawn op, or else the next one that applies to v_x within the class's sizes.
    for (let k = 0; k < OPS.length; k++) {
      const made = OPS[(r.op + k) % OPS.length](x, r, pool);
      if (made === null || (made.work ?? 0) > spec.maxWork) continue;
      const value = traceValue(made, pool);
      if (value === null || sizeOf(value.shape) > maxValue || value.shape.length > 6) continue;
      instructions.push({ ...made, value });
      break;
    }
  }
  const all = [...inputs, ...instructions.map((i) => i.value)];
  const used = new Set(instructions.flatMap((i) => i.args));
  const sinks = range(all.length).filter((i) => !used.has(i));
  // Also a few values that instructions read (their kernels then store them as well).
  const extras = range(all.length).filter((i) => used.has(i) && (raw.extra >> i) & 1);
  const returned = [...extras, ...sinks].sort((a, b) => a - b);
  const floatSinks = sinks.filter((i) => all[i].dtype === 'f32');
  const gradient =
    raw.gradient && floatSinks.length > 0
      ? floatSinks.map((index, k) => {
          const t = raw.terms[k % raw.terms.length];
          return {
            index,
            weight: pick(WEIGHTS, t.weight),
            reduce: pick(REDUCES, t.reduce),
          };
        })
      : null;
  const layout = pick(['separate', 'packed', 'host'] as const, raw.layout);
  const donate = range(inputs.length).filter((i) => (raw.donate >> i) & 1);
  return new FuzzProgram(raw.size, inputs, instructions, returned, gradient, raw.data, {
    fuse: raw.fuse,
    layout,
    donate,
  });
}

/**
 * A program written out instead of drawn (tests pin shapes the draw reaches rarely): `steps` as
 * instructions, returning their sinks, no gradient, fused, inputs on grid data of `seed`.
 */
export function programOf(
  size: SizeClass,
  inputs: readonly FuzzInput[],
  steps: readonly Made[],
  seed = 1,
): FuzzProgram {
  const instructions: Instruction[] = [];
  for (const made of steps) {
    const value = traceValue(made, [...inputs, ...instructions.map((i) => i.value)]);
    if (value === null) throw new Error(`programOf: the DSL refused ${made.text}`);
    instructions.push({ ...made, value });
  }
  const used = new Set(instructions.flatMap((i) => i.args));
  const returned = range(inputs.length + instructions.length).filter((i) => !used.has(i));
  return new FuzzProgram(
    size,
    inputs,
    instructions,
    returned,
    null,
    { grid: true, extremeInts: false, seed },
    { fuse: true, layout: 'separate', donate: [] },
  );
}

export interface FuzzOptions {
  /** Relative weights of the size classes (default small 76, medium 20, large 4, huge 0.2). */
  readonly weights?: Partial<Record<SizeClass, number>>;
}

/** Random programs for the compiler fuzz (see the file comment). */
export function fuzzProgramArb(options: FuzzOptions = {}): fc.Arbitrary<FuzzProgram> {
  const weights = { small: 76, medium: 20, large: 4, huge: 0.2, ...options.weights };
  // fast-check weights are integers: per mille of the total.
  const total = Object.values(weights).reduce((a, b) => a + b, 0);
  const size = fc.oneof(
    ...(['small', 'medium', 'large', 'huge'] as const)
      .filter((c) => weights[c] > 0)
      .map((c) => ({
        arbitrary: fc.constant(c),
        weight: Math.max(1, Math.round((1000 * weights[c]) / total)),
      })),
  );
  const choice = fc.nat({ max: 1 << 16 });
  const raw: fc.Arbitrary<RawProgram> = fc.record({
    size,
    dims: fc.tuple(choice, choice, choice, choice),
    longAt: fc.integer({ min: 1, max: 3 }).map((k) => 4 - k),
    inputs: fc.array(
      fc.record({
        rank: fc.integer({ min: 0, max: 4 }),
        ones: fc.oneof(
          { arbitrary: fc.constant(0), weight: 3 },
          { arbitrary: fc.nat({ max: 15 }), weight: 1 },
        ),
        dtype: fc.nat({ max: DTYPES.length - 1 }),
        asNumber: fc.boolean(),
      }),
      { minLength: 1, maxLength: 3 },
    ),
    instructions: fc.array(
      fc.record({
        op: fc.nat({ max: OPS.length - 1 }),
        a: choice,
        b: choice,
        p: choice,
        q: choice,
      }),
      { minLength: 1, maxLength: 10 },
    ),
    extra: fc.oneof({ arbitrary: fc.constant(0), weight: 4 }, { arbitrary: fc.nat(), weight: 1 }),
    gradient: fc.oneof(
      { arbitrary: fc.constant(false), weight: 2 },
      { arbitrary: fc.constant(true), weight: 1 },
    ),
    terms: fc.array(
      fc.record({
        weight: fc.nat({ max: WEIGHTS.length - 1 }),
        reduce: fc.nat({ max: REDUCES.length - 1 }),
      }),
      { minLength: 1, maxLength: 3 },
    ),
    data: fc.record({ grid: fc.boolean(), extremeInts: fc.boolean(), seed: fc.nat() }),
    fuse: fc.oneof(
      { arbitrary: fc.constant(true), weight: 6 },
      { arbitrary: fc.constant(false), weight: 1 },
    ),
    layout: fc.nat({ max: 2 }),
    donate: fc.oneof(
      { arbitrary: fc.constant(0), weight: 3 },
      { arbitrary: fc.nat({ max: 7 }), weight: 1 },
    ),
  });
  return raw.map(resolve);
}
