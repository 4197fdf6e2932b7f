import { GrngError } from '../errors.js';
import type { Node } from '../ir/node.js';
import { shapeSize, stridesOf } from '../ir/shape.js';
import type { KernelPlan } from '../kernels/partition.js';
import { opTable } from '../ops/table.js';
import type { WgslRule } from '../ops/rule.js';
import { literal, wgslType } from './literals.js';
import { PRELUDE } from './prelude.js';

export interface KernelSource {
  readonly code: string;
  /** Elements of the root: one invocation each. */
  readonly invocations: number;
  readonly workgroupSize: number;
}

/** Buffers hold f32 or i32; bool is stored as i32 0/1. */
const storageType = (node: Node): string => (node.dtype === 'f32' ? 'f32' : 'i32');

// The op table is keyed by primitive; a runtime key cannot narrow it.
const ruleOf = (node: Node) => opTable[node.op].wgsl as WgslRule<typeof node.op> as unknown as AnyWgslRule;
type AnyWgslRule =
  | { kind: 'expr'; expr(args: readonly string[], node: Node): string }
  | { kind: 'index'; operandIndex(index: readonly string[], node: Node): { index: string[]; inBounds?: string } }
  | { kind: 'leaf'; value(index: readonly string[], node: Node): string | null }
  | { kind: 'reduce'; init(node: Node): string; combine(acc: string, value: string): string }
  | { kind: 'matmul' };

/**
 * Emits WGSL statements that compute node values at symbolic indices, inlining everything
 * that is not a kernel input. Values are memoized per (node, index) within the enclosing
 * block, so a DAG costs each subexpression once.
 */
class Emitter {
  private readonly blocks: string[][] = [[]];
  private readonly memo: Map<string, string>[] = [new Map()];
  private count = 0;
  /** Bindings read somewhere other than at the kernel's own element (they cannot be updated in place). */
  readonly readElsewhere = new Set<number>();

  /** The kernel's own element index, to recognize reads of exactly that element. */
  ownIndex: readonly string[] = [];
  /** Vectorized kernel: every value is a vec4 and every load is the invocation's own vec4. */
  vector = false;
  /** Roots already computed in this kernel (reductions), readable at their own index only. */
  readonly registers = new Map<number, { name: string; index: readonly string[] }>();

  constructor(private readonly bindings: ReadonlyMap<number, number>) {}

  line(text: string): void {
    this.blocks[this.blocks.length - 1].push(text);
  }

  bind(expr: string): string {
    if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(expr) || /^-?[0-9]+i$/.test(expr)) return expr;
    const name = `t${this.count++}`;
    this.line(`let ${name} = ${expr};`);
    return name;
  }

  fresh(prefix: string): string {
    return `${prefix}${this.count++}`;
  }

  /** Runs `body` in a nested block (memo entries made inside stay inside) and returns its lines. */
  block(body: () => void): string[] {
    this.blocks.push([]);
    this.memo.push(new Map());
    body();
    this.memo.pop();
    return this.blocks.pop() as string[];
  }

  value(node: Node, index: readonly string[]): string {
    const key = `${node.id}@${index.join(',')}`;
    for (let i = this.memo.length - 1; i >= 0; i--) {
      const hit = this.memo[i].get(key);
      if (hit !== undefined) return hit;
    }
    const result = this.compute(node, index);
    this.memo[this.memo.length - 1].set(key, result);
    return result;
  }

  private compute(node: Node, index: readonly string[]): string {
    const register = this.registers.get(node.id);
    if (register !== undefined) {
      if (index.length === register.index.length && index.every((e, i) => e === register.index[i])) return register.name;
      throw new RegisterIndexError();
    }
    const binding = this.bindings.get(node.id);
    if (binding !== undefined && this.vector) {
      // A one-element buffer (a scalar hyperparameter) is splatted; others are read as vec4s.
      return this.bind(shapeSize(node.shape) === 1 ? `vec4<f32>(in${binding}[0])` : `in${binding}[uflat]`);
    }
    if (binding !== undefined) {
      const own = index.length === this.ownIndex.length && index.every((e, i) => e === this.ownIndex[i]);
      if (!own) this.readElsewhere.add(binding);
      const strides = stridesOf(node.shape);
      const offset = index.map((e, i) => (node.shape[i] === 1 ? null : strides[i] === 1 ? e : `${e} * ${strides[i]}i`)).filter((t) => t !== null);
      const load = `in${binding}[${offset.length > 0 ? offset.join(' + ') : '0i'}]`;
      return this.bind(node.dtype === 'bool' ? `(${load} != 0i)` : load);
    }
    const rule = ruleOf(node);
    switch (rule.kind) {
      case 'expr':
        return this.bind(rule.expr(node.inputs.map((n) => this.value(n, index)), node));
      case 'index': {
        const mapped = rule.operandIndex(index, node);
        const inner = this.value(node.inputs[0], mapped.index.map((e) => this.bind(e)));
        if (mapped.inBounds === undefined) return inner;
        return this.bind(`select(${literal(0, node.dtype)}, ${inner}, ${mapped.inBounds})`);
      }
      case 'leaf': {
        const v = rule.value(index, node);
        if (v === null) throw new GrngError('compile', `internal: ${node.op} node ${node.id} is buffer-backed but has no binding`);
        return this.bind(this.vector ? `vec4<${wgslType(node.dtype)}>(${v})` : v);
      }
      default:
        throw new GrngError('compile', `internal: ${node.op} node ${node.id} must be materialized before it is read`);
    }
  }

  lines(): string[] {
    return this.blocks[0];
  }
}

/** Unravels `flat` into one index variable per axis of `shape` (row-major). */
function unravel(e: Emitter, flat: string, shape: readonly number[]): string[] {
  const strides = stridesOf(shape);
  return shape.map((d, i) => {
    if (d === 1) return '0i';
    const q = strides[i] === 1 ? flat : `(${flat} / ${strides[i]}i)`;
    return e.bind(i === 0 ? q : `${q} % ${d}i`); // flat < size, so the outermost axis needs no wrap
  });
}

/** WGSL for one kernel: one invocation per element of the root. */
/**
 * WGSL for one kernel: one invocation per element of the roots. `aliases` maps a root (by
 * position) to the input (by position) whose buffer it overwrites in place: that input is bound
 * read_write and the root is stored into it. Only valid when the kernel reads that input at its
 * own element alone (see `inPlaceCandidates`) and nothing later reads the old values.
 */
export function kernelSource(plan: KernelPlan, workgroupSize: number, aliases: ReadonlyMap<number, number> = new Map()): KernelSource {
  return generate(plan, workgroupSize, aliases).source;
}

/** Inputs this kernel reads only at its own element: each can be overwritten by a root of the same shape. */
export function inPlaceCandidates(plan: KernelPlan): number[] {
  const kind = ruleOf(plan.roots[0]).kind;
  if (kind === 'reduce' || kind === 'matmul') return [];
  const { readElsewhere } = generate(plan, 64, new Map()).emitter;
  return plan.inputs.flatMap((n, i) => (readElsewhere.has(i) ? [] : [i]));
}

function generate(plan: KernelPlan, workgroupSize: number, aliases: ReadonlyMap<number, number>): { source: KernelSource; emitter: Emitter } {
  const root = plan.roots[0];
  const bindings = new Map(plan.inputs.map((n, i) => [n.id, i] as const));
  if (ruleOf(root).kind === 'matmul') return generateMatmul(plan, bindings, workgroupSize);
  if (isWideReduction(plan)) return generateWideReduction(plan, bindings, workgroupSize);
  const e = new Emitter(bindings);
  e.vector = vectorizable(plan);
  // Unsigned indices spare the bounds checks a sign test (vectorized kernels index only by flat).
  if (e.vector) e.line('let uflat = u32(flat);');
  const index = unravel(e, 'flat', root.shape);
  e.ownIndex = index;
  const stores = plan.roots.map((r, k) => {
    const rule = ruleOf(r);
    let result: string;
    if (rule.kind === 'reduce') {
      result = reduction(e, r, index, rule);
      e.registers.set(r.id, { name: result, index }); // later roots read it from the register
    } else result = e.value(r, index); // shared subexpressions are memoized across the roots
    const target = aliases.has(k) ? `in${aliases.get(k)}` : `out${k}`;
    return `${target}[${e.vector ? 'uflat' : 'flat'}] = ${r.dtype === 'bool' ? `select(0i, 1i, ${result})` : result};`;
  });
  const inPlace = new Set(aliases.values());
  const element = (n: Node) => (e.vector && shapeSize(n.shape) > 1 ? `vec4<${storageType(n)}>` : storageType(n));
  const decls = declarations(plan, inPlace, element);
  let binding = plan.inputs.length;
  plan.roots.forEach((r, k) => {
    if (!aliases.has(k)) decls.push(`@group(0) @binding(${binding++}) var<storage, read_write> out${k}: array<${element(r)}>;`);
  });
  const invocations = shapeSize(root.shape) / (e.vector ? 4 : 1);
  return { source: assemble(decls, [...e.lines(), ...stores], invocations, workgroupSize, e.vector ? 'vec4<f32>' : 'f32'), emitter: e };
}

/**
 * Whether an elementwise kernel can run on vec4s (4 elements per invocation, as hand-written
 * kernels do): f32 buffers of the roots' shape read only at the invocation's own element, a
 * size divisible by 4, and nothing inlined that depends on the index or converts types
 * (iota, casts, movement over buffers: broadcast constants are fine).
 */
function vectorizable(plan: KernelPlan): boolean {
  const root = plan.roots[0];
  const size = shapeSize(root.shape);
  if (size === 0 || size % 4 !== 0) return false;
  const sameShape = (n: Node) => n.shape.length === root.shape.length && n.shape.every((d, i) => d === root.shape[i]);
  if (!plan.roots.every((r) => r.dtype === 'f32' && sameShape(r) && ruleOf(r).kind !== 'reduce' && ruleOf(r).kind !== 'matmul')) return false;
  if (!plan.inputs.every((n) => n.dtype === 'f32' && (sameShape(n) || shapeSize(n.shape) === 1))) return false;
  const buffers = new Set(plan.inputs.map((n) => n.id));
  const seen = new Set<number>();
  const ok = (node: Node): boolean => {
    if (buffers.has(node.id) || seen.has(node.id)) return true;
    seen.add(node.id);
    const kind = ruleOf(node).kind;
    if (node.op === 'cast' || node.op === 'iota' || node.dtype === 'i32') return false;
    if (kind === 'index') return uniformValue(node.inputs[0], buffers);
    return node.inputs.every(ok);
  };
  return plan.roots.every(ok);
}

/** True when `node` has one value everywhere: a splat constant or a one-element buffer, possibly moved. */
function uniformValue(node: Node, buffers: ReadonlySet<number>): boolean {
  if (buffers.has(node.id)) return shapeSize(node.shape) === 1;
  if (node.op === 'constant') return 'value' in (node.attrs as object);
  return ruleOf(node).kind === 'index' && uniformValue(node.inputs[0], buffers);
}

function declarations(plan: KernelPlan, inPlace: ReadonlySet<number>, element: (n: Node) => string = storageType): string[] {
  return plan.inputs.map((n, i) => `@group(0) @binding(${i}) var<storage, ${inPlace.has(i) ? 'read_write' : 'read'}> in${i}: array<${element(n)}>;`);
}

/** The kernel module: helpers it calls, bindings, and a main over `invocations` flat ids. */
function assemble(decls: readonly string[], lines: readonly string[], invocations: number, workgroupSize: number, valueType = 'f32'): KernelSource {
  const body = lines.map((l) => `  ${l}`).join('\n');
  const code = `${decls.join('\n')}

@compute @workgroup_size(${workgroupSize})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let flat = i32(gid.x + gid.y * groups.x * ${workgroupSize}u);
  if (flat >= ${invocations}i) { return; }
${body}
}
`;
  return { code: [...helpersFor(code, valueType), code].join('\n'), invocations, workgroupSize };
}

/**
 * Register-blocked matmul: each invocation computes a TM×TN tile of outputs, loading TM values
 * of a and TN of b per k (operands are index arithmetic over buffers, inlined). No workgroup
 * memory: on llvmpipe register blocking is what pays (shared-memory tiling measured slower).
 * Rows and columns past the edge are clamped for loading and skipped when storing.
 */
function generateMatmul(plan: KernelPlan, bindings: ReadonlyMap<number, number>, workgroupSize: number): { source: KernelSource; emitter: Emitter } {
  const root = plan.roots[0];
  const [a, b] = root.inputs;
  const r = root.shape.length;
  const [m, n] = root.shape.slice(r - 2);
  const depth = a.shape[r - 1];
  const tm = Math.min(MATMUL_TILE.rows, m);
  const tn = Math.min(MATMUL_TILE.cols, n);
  const space = [...root.shape.slice(0, r - 2), Math.ceil(m / tm), Math.ceil(n / tn)];
  const e = new Emitter(bindings);
  const idx = unravel(e, 'flat', space);
  const batch = idx.slice(0, r - 2);
  const row0 = e.bind(`${idx[r - 2]} * ${tm}i`);
  const col0 = e.bind(`${idx[r - 1]} * ${tn}i`);
  // Clamping is only needed where the last tile runs past the edge.
  const rows = Array.from({ length: tm }, (_, i) => e.bind(m % tm === 0 ? `${row0} + ${i}i` : `min(${row0} + ${i}i, ${m - 1}i)`));
  const cols = Array.from({ length: tn }, (_, j) => e.bind(n % tn === 0 ? `${col0} + ${j}i` : `min(${col0} + ${j}i, ${n - 1}i)`));
  const acc = (i: number, j: number) => `c${i}_${j}`;
  for (let i = 0; i < tm; i++) for (let j = 0; j < tn; j++) e.line(`var ${acc(i, j)} = ${literal(0, root.dtype)};`);
  const k = e.fresh('k');
  const body = e.block(() => {
    const as = rows.map((row) => e.value(a, [...batch, row, k]));
    const bs = cols.map((col) => e.value(b, [...batch, k, col]));
    for (let i = 0; i < tm; i++) for (let j = 0; j < tn; j++) e.line(`${acc(i, j)} = ${acc(i, j)} + ${as[i]} * ${bs[j]};`);
  });
  e.line(`for (var ${k} = 0i; ${k} < ${depth}i; ${k}++) {`);
  body.forEach((l) => e.line(`  ${l}`));
  e.line('}');
  const strides = stridesOf(root.shape);
  const base = batch.map((v, i) => `${v} * ${strides[i]}i`).join(' + ') || '0i';
  for (let i = 0; i < tm; i++) {
    for (let j = 0; j < tn; j++) {
      const guard = [m % tm === 0 ? '' : `${row0} + ${i}i < ${m}i`, n % tn === 0 ? '' : `${col0} + ${j}i < ${n}i`].filter((g) => g !== '');
      const store = `out0[${base} + (${row0} + ${i}i) * ${n}i + ${col0} + ${j}i] = ${acc(i, j)};`;
      e.line(guard.length === 0 ? store : `if (${guard.join(' && ')}) { ${store} }`);
    }
  }
  const decls = declarations(plan, new Set());
  decls.push(`@group(0) @binding(${plan.inputs.length}) var<storage, read_write> out0: array<${storageType(root)}>;`);
  return { source: assemble(decls, e.lines(), shapeSize(space), workgroupSize), emitter: e };
}

/** Outputs per invocation of a matmul (rows × cols), tuned on llvmpipe (issue 3's measurements). */
const MATMUL_TILE = { rows: 8, cols: 16 };

/** The prelude helpers `code` calls, directly or through other helpers (WGSL declarations are order-free). */
function helpersFor(code: string, valueType: string): string[] {
  const used = new Set<string>();
  let text = code;
  for (let grew = true; grew; ) {
    grew = false;
    for (const h of PRELUDE) {
      if (!used.has(h.name) && text.includes(`${h.name}(`)) {
        used.add(h.name);
        text += h.code(valueType);
        grew = true;
      }
    }
  }
  return PRELUDE.filter((h) => used.has(h.name)).map((h) => h.code(valueType));
}

/** Reductions over at least this many elements per output use a whole workgroup per output. */
const WIDE_REDUCTION = 1024;

/** A kernel read a root computed earlier in it somewhere other than at that root's own element. */
class RegisterIndexError extends Error {}

/**
 * Whether `plan` can be one kernel: false when a root reads an earlier root of the same
 * kernel at another element (that value is only in a register of another invocation).
 */
export function fitsOneKernel(plan: KernelPlan, workgroupSize: number): boolean {
  try {
    generate(plan, workgroupSize, new Map());
    return true;
  } catch (error) {
    if (error instanceof RegisterIndexError) return false;
    throw error;
  }
}

export function isWideReduction(plan: KernelPlan): boolean {
  const root = plan.roots[0];
  if (plan.roots.length !== 1 || ruleOf(root).kind !== 'reduce') return false;
  return shapeSize(root.inputs[0].shape) / Math.max(1, shapeSize(root.shape)) >= WIDE_REDUCTION;
}

/**
 * A long reduction: one workgroup per output element. Each lane accumulates a strided share of
 * the reduced elements (the producer expression inlined), then the workgroup combines the lanes
 * by halving in workgroup memory. Without it, summing a million elements is one thread's loop.
 */
function generateWideReduction(plan: KernelPlan, bindings: ReadonlyMap<number, number>, workgroupSize: number): { source: KernelSource; emitter: Emitter } {
  const root = plan.roots[0] as Node<'reduceSum'>;
  const rule = ruleOf(root) as { init(node: Node): string; combine(acc: string, v: string): string };
  const { axes } = root.attrs;
  const input = root.inputs[0];
  const reduced = axes.map((a) => input.shape[a]);
  const lanes = 2 ** Math.floor(Math.log2(workgroupSize)); // the halving needs a power of two
  const e = new Emitter(bindings);
  const outIndex = unravel(e, 'flat', root.shape);
  e.line(`var acc = ${rule.init(root)};`);
  const body = e.block(() => {
    const r = unravel(e, 'r', reduced);
    let k = 0;
    const inIndex = input.shape.map((_, i) => (axes.includes(i) ? r[axes.indexOf(i)] : outIndex[k++]));
    e.line(`acc = ${rule.combine('acc', e.value(input, inIndex))};`);
  });
  e.line(`for (var r = i32(lane); r < ${shapeSize(reduced)}i; r += ${lanes}i) {`);
  body.forEach((l) => e.line(`  ${l}`));
  e.line('}');
  const t = storageType(root);
  const decls = declarations(plan, new Set());
  decls.push(`@group(0) @binding(${plan.inputs.length}) var<storage, read_write> out0: array<${t}>;`);
  decls.push(`var<workgroup> partial: array<${t}, ${lanes}>;`);
  const outputs = shapeSize(root.shape);
  const code = `${decls.join('\n')}

@compute @workgroup_size(${lanes})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lane: u32, @builtin(num_workgroups) groups: vec3<u32>) {
  let flat = i32(wid.x + wid.y * groups.x);
  if (flat >= ${outputs}i) { return; }
${e.lines().map((l) => `  ${l}`).join('\n')}
  partial[lane] = acc;
  workgroupBarrier();
  for (var s = ${lanes / 2}u; s > 0u; s = s / 2u) {
    if (lane < s) { partial[lane] = ${rule.combine('partial[lane]', 'partial[lane + s]')}; }
    workgroupBarrier();
  }
  if (lane == 0u) { out0[flat] = partial[0]; }
}
`;
  // One workgroup per output: the device dispatches invocations / workgroupSize groups.
  return { source: { code: [...helpersFor(code, 'f32'), code].join('\n'), invocations: outputs * lanes, workgroupSize: lanes }, emitter: e };
}

/** Sequential accumulation over the reduced axes (the producer expression is inlined per element). */
function reduction(e: Emitter, root: Node, outIndex: readonly string[], rule: { init(node: Node): string; combine(acc: string, v: string): string }): string {
  const { axes } = (root as Node<'reduceSum'>).attrs;
  const input = root.inputs[0];
  const acc = e.fresh('acc');
  e.line(`var ${acc} = ${rule.init(root)};`);
  const loops = axes.map(() => e.fresh('r'));
  let k = 0;
  const inIndex = input.shape.map((_, i) => (axes.includes(i) ? loops[axes.indexOf(i)] : outIndex[k++]));
  const body = e.block(() => e.line(`${acc} = ${rule.combine(acc, e.value(input, inIndex))};`));
  let lines = body;
  for (let j = axes.length - 1; j >= 0; j--) {
    const v = loops[j];
    lines = [`for (var ${v} = 0i; ${v} < ${input.shape[axes[j]]}i; ${v}++) {`, ...lines.map((l) => `  ${l}`), '}'];
  }
  lines.forEach((l) => e.line(l));
  return acc;
}

