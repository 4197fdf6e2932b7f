import { GrngError } from '../../core/errors.js';
import type { Node } from '../../core/ir/node.js';
import type { Primitive } from '../../core/ir/primitives.js';
import { shapeSize, stridesOf } from '../../core/ir/shape.js';
import { ruleOf } from '../../core/ops/table.js';
import type { WgslRule } from '../../core/ops/rule.js';
import { literal, wgslType } from '../../core/ops/wgsl-literals.js';
import { scalarHelperCalls, vectorHelperCalls } from './prelude.js';
import { windowedLoad, windowedStore } from './windowed-bindings.js';

/** How WGSL generation computes `node` (its primitive's entry in the op table). */
export const wgslRuleOf = (node: Node): WgslRule<Primitive> => ruleOf(node).wgsl;
export type ReduceRule = Extract<WgslRule<Primitive>, { kind: 'reduce' }>;

/**
 * Where a buffer-backed node lives in the kernel: its binding's WGSL name and element offset (a
 * multiple of 4).
 */
export interface Location {
  readonly name: string;
  readonly offset: number;
  /** Cell of the `scalars` uniform holding a copy of this one-element input, if any. */
  readonly scalar?: number;
  /**
   * Set when the array's buffer is longer than one binding: it is bound as that many windows, and
   * read and written through the helpers of windowed-bindings.ts.
   */
  readonly windowed?: boolean;
}

/** Resolves buffer-backed nodes to their locations; undefined for nodes computed inline. */
export type Locate = (node: Node) => Location | undefined;

/** A kernel read a root computed earlier in it somewhere other than at that root's own element. */
export class RegisterIndexError extends Error {}

/**
 * Emits WGSL statements that compute node values at symbolic indices, inlining everything
 * that is not buffer-backed. Values are memoized per (node, index) within the enclosing block,
 * so a DAG costs each subexpression once.
 */
export class Emitter {
  private readonly blocks: string[][] = [[]];
  private readonly memo: Map<string, string>[] = [new Map()];
  private count = 0;
  /** Buffer-backed nodes read somewhere other than at the current segment's own element. */
  readonly readElsewhere = new Set<number>();
  /** Buffer-backed node id → the segments that read it. */
  readonly readBy = new Map<number, Set<number>>();
  /** The segment being emitted (a dispatch may run several iteration spaces). */
  segment = 0;
  /** The segment's own element index, to recognize reads of exactly that element. */
  ownIndex: readonly string[] = [];
  /** Vectorized segment: values are vec4s and loads are the invocation's own vec4 at `vflat`. */
  vector = false;
  vflat = 'uflat';
  /** Vector code in a kernel whose helpers are written for f32: call their vec4 twins. */
  vectorHelpers = false;
  /**
   * Bindings declared as arrays of vec4s (a vector dispatch's, a vec4 matmul's): their scalar
   * elements are read by component.
   */
  vec4Bindings: ReadonlySet<string> = new Set();
  /**
   * Vector segments: names holding one scalar for all four lanes (per-call scalars, literals and
   * what is computed from them alone). They stay scalars — a bias correction's pow runs once per
   * invocation, not per lane — and are splatted where they meet a vec4.
   */
  private readonly uniforms = new Set<string>();
  /**
   * Values already in registers (reductions computed earlier, a fused matmul's accumulator),
   * readable at their own index only.
   */
  readonly registers = new Map<number, { name: string; index: readonly string[] }>();
  /**
   * Where the kernel's arrays start, which scalars-uniform cells it reads and (`dimension`) its
   * sizes and strides, in the order it first reads them: the values of the `offsets` uniform.
   * They are read from it rather than written as literals so that kernels differing only in where
   * their data lives or in their shapes (Newton–Schulz iterations, layers of any width, one kernel
   * in two step variants) are one WGSL text, hence one pipeline for the driver to compile.
   */
  readonly offsets: number[] = [];
  /** Placement key → its index in `offsets`. */
  private readonly offsetCells = new Map<string, number>();

  /** Where buffer-backed nodes live (undefined: computed inline). */
  constructor(readonly locate: Locate) {}

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

  /** `node` at `index`, in the segment's value type (a vec4 in vector segments). */
  value(node: Node, index: readonly string[]): string {
    const v = this.operand(node, index);
    return this.vector && this.uniforms.has(v) ? this.splat(v, node) : v;
  }

  /** `node` at `index`: a scalar in vector segments when it is the same in every lane. */
  private operand(node: Node, index: readonly string[]): string {
    const key = `${node.id}@${index.join(',')}`;
    // A uniform value is the same at every index: computed once per block, not once per element
    // (a matmul's vector epilogue evaluates its nodes at many indices).
    const uniformKey = `${node.id}@uniform`;
    for (let i = this.memo.length - 1; i >= 0; i--) {
      const hit = this.memo[i].get(key) ?? (this.vector ? this.memo[i].get(uniformKey) : undefined);
      if (hit !== undefined) return hit;
    }
    const result = this.compute(node, index);
    this.memo[this.memo.length - 1].set(key, result);
    if (this.vector && this.uniforms.has(result))
      this.memo[this.memo.length - 1].set(uniformKey, result);
    return result;
  }

  /** A uniform scalar as a vec4 (memoized like values, so a block splats each once). */
  private splat(v: string, node: Node): string {
    const key = `splat:${v}`;
    for (let i = this.memo.length - 1; i >= 0; i--) {
      const hit = this.memo[i].get(key);
      if (hit !== undefined) return hit;
    }
    const out = this.bind(`vec4<${wgslType(node.dtype)}>(${v})`);
    this.memo[this.memo.length - 1].set(key, out);
    return out;
  }

  /** Binds `expr` as a scalar shared by every lane of a vector segment. */
  private uniform(expr: string): string {
    const name = this.bind(expr);
    this.uniforms.add(name);
    return name;
  }

  /**
   * `at`'s offset in units of `unit` elements (it divides the offset), as a u32 expression reading
   * the `offsets` uniform.
   */
  offset(at: Location, unit: 1 | 4 = 1): string {
    return this.placement(`${at.name}:${at.offset}:${unit}`, at.offset / unit);
  }

  /**
   * A size or stride of the kernel (`key` names it) as a u32 expression reading the `offsets`
   * uniform, so that the kernel's text does not depend on it.
   */
  dimension(key: string, value: number): string {
    return this.placement(`dim:${key}`, value);
  }

  /**
   * Placements written as literals instead (see LITERAL_PLACEMENTS_FROM in kernel.ts): the kernel's
   * text is then its program's own.
   */
  literalPlacements = false;

  /**
   * Where in `offsets` the placements of binding `name` are (where its arrays start), each with the
   * unit it counts in.
   */
  placementsOf(name: string): { index: number; unit: number }[] {
    return [...this.offsetCells].flatMap(([key, index]) => {
      const [binding, , unit] = key.split(':');
      return binding === name ? [{ index, unit: Number(unit) }] : [];
    });
  }

  /** `value` (keyed by `key`) as a u32 expression reading the `offsets` uniform. */
  private placement(key: string, value: number): string {
    if (this.literalPlacements) return `${value}u`;
    let j = this.offsetCells.get(key);
    if (j === undefined) {
      j = this.offsets.push(value) - 1;
      this.offsetCells.set(key, j);
    }
    return `offsets[${j >> 2}].${'xyzw'[j & 3]}`;
  }

  /** Element `linear` (an i32 expression) of the array at `at`, read. */
  element(at: Location, linear: string): string {
    const i = `i32(${this.offset(at)}) + ${linear}`;
    if (at.windowed === true) return windowedLoad(at.name, `u32(${i})`);
    if (!this.vec4Bindings.has(at.name)) return `${at.name}[${i}]`;
    return this.component(at, this.bind(`u32(${i})`));
  }

  /** The statement storing `value` at element `linear` (an i32 expression) of the array at `at`. */
  storeElement(at: Location, linear: string, value: string): string {
    const i = `i32(${this.offset(at)}) + ${linear}`;
    if (at.windowed === true) return windowedStore(at.name, `u32(${i})`, value);
    if (!this.vec4Bindings.has(at.name)) return `${at.name}[${i}] = ${value};`;
    const u = this.bind(`u32(${i})`);
    return `${at.name}[${u} >> 2u][${u} & 3u] = ${value};`;
  }

  /**
   * Element `u` (a u32 expression counting from the start of `at`'s binding) read: by component
   * when the binding holds vec4s.
   */
  component(at: Location, u: string): string {
    if (at.windowed === true) return windowedLoad(at.name, u);
    return this.vec4Bindings.has(at.name)
      ? `${at.name}[${u} >> 2u][${u} & 3u]`
      : `${at.name}[${u}]`;
  }

  /** The vec4 `v` (a u32 expression counting from the start of `at`'s vec4 binding), read. */
  vec4At(at: Location, v: string): string {
    return at.windowed === true ? windowedLoad(at.name, v, 4) : `${at.name}[${v}]`;
  }

  /** The statement storing the vec4 `value` at vec4 `v` (u32) of `at`'s vec4 binding. */
  storeVec4At(at: Location, v: string, value: string): string {
    return at.windowed === true
      ? windowedStore(at.name, v, value, 4)
      : `${at.name}[${v}] = ${value};`;
  }

  /** The invocation's own vec4 of a buffer-backed node (vector segments). */
  ownVec4(at: Location): string {
    return this.vec4At(at, `${this.offset(at, 4)} + ${this.vflat}`);
  }

  /** The statement storing `value` as the invocation's own vec4 of `at` (vector segments). */
  storeOwnVec4(at: Location, value: string): string {
    return this.storeVec4At(at, `${this.offset(at, 4)} + ${this.vflat}`, value);
  }

  private compute(node: Node, index: readonly string[]): string {
    const register = this.registers.get(node.id);
    if (register !== undefined) {
      if (index.length === register.index.length && index.every((e, i) => e === register.index[i]))
        return register.name;
      throw new RegisterIndexError();
    }
    const at = this.locate(node);
    if (at !== undefined) return this.load(node, at, index);
    const rule = wgslRuleOf(node);
    switch (rule.kind) {
      case 'expr': {
        if (!this.vector)
          return this.bind(
            rule.expr(
              node.inputs.map((n) => this.value(n, index)),
              node,
            ),
          );
        const args = node.inputs.map((n) => this.operand(n, index));
        if (args.every((a) => this.uniforms.has(a)))
          return this.uniform(scalarHelperCalls(rule.expr(args, node)));
        if (node.op === 'div' && node.dtype === 'f32' && this.uniforms.has(args[1])) {
          // A vec4 over a per-call scalar: one reciprocal per invocation, then multiplies (as a
          // shader compiler does for a literal divisor). Within WGSL's own 2.5-ulp division bound.
          return this.bind(`(${args[0]} * ${this.splat(this.uniform(`1.0f / ${args[1]}`), node)})`);
        }
        const expr = rule.expr(
          args.map((a, i) => (this.uniforms.has(a) ? this.splat(a, node.inputs[i]) : a)),
          node,
        );
        return this.bind(this.vectorHelpers ? vectorHelperCalls(expr) : expr);
      }
      case 'index': {
        const mapped = rule.operandIndex(index, node);
        const at = mapped.index.map((e) => this.bind(e));
        if (mapped.inBounds === undefined) return this.operand(node.inputs[0], at);
        const inner = this.value(node.inputs[0], at);
        return this.bind(`select(${literal(0, node.dtype)}, ${inner}, ${mapped.inBounds})`);
      }
      case 'gather': {
        // The id's value picks where the table is read: never at the kernel's own element, and
        // vector segments (which read buffers only there) never contain one (kernel.ts).
        const id = this.value(node.inputs[1], rule.idsIndex(index, node));
        const at = rule.operandIndex(index, node, id).map((e) => this.bind(e));
        return this.operand(node.inputs[0], at);
      }
      case 'leaf': {
        const v = rule.value(index, node);
        if (v === null)
          throw new GrngError(
            'compile',
            `internal: ${node.op} node ${node.id} is buffer-backed but has no region`,
          );
        return this.vector ? this.uniform(v) : this.bind(v);
      }
      default:
        throw new GrngError(
          'compile',
          `internal: ${node.op} node ${node.id} must be materialized before it is read`,
        );
    }
  }

  private load(node: Node, at: Location, index: readonly string[]): string {
    const readers = this.readBy.get(node.id) ?? new Set<number>();
    readers.add(this.segment);
    this.readBy.set(node.id, readers);
    if (at.scalar !== undefined) {
      // A per-call scalar: read from its uniform cell (its value at every index).
      this.readElsewhere.add(node.id);
      // Its cell is a placement too: the same kernel in another program reads another cell.
      const bits = `scalars[${this.placement(`scalar:${at.scalar}`, at.scalar)}].x`;
      const value =
        node.dtype === 'f32'
          ? `bitcast<f32>(${bits})`
          : node.dtype === 'bool'
            ? `(${bits} != 0u)`
            : `bitcast<i32>(${bits})`;
      return this.vector ? this.uniform(value) : this.bind(value);
    }
    if (this.vector) {
      // A one-element buffer (a scalar hyperparameter) is a uniform scalar; others are read as
      // vec4s (a matmul's vector epilogue reads those itself: vector-epilogue.ts).
      if (shapeSize(node.shape) !== 1) return this.bind(this.ownVec4(at));
      this.readElsewhere.add(node.id);
      return this.uniform(
        this.vec4Bindings.has(at.name)
          ? `${this.vec4At(at, this.offset(at, 4))}[0]`
          : this.component(at, this.offset(at)),
      );
    }
    const own =
      index.length === this.ownIndex.length && index.every((e, i) => e === this.ownIndex[i]);
    if (!own) this.readElsewhere.add(node.id);
    const strides = stridesOf(node.shape);
    const terms = index
      .map((e, i) =>
        node.shape[i] === 1
          ? null
          : strides[i] === 1
            ? e
            : `${e} * i32(${this.dimension(`stride ${node.id} ${i}`, strides[i])})`,
      )
      .filter((t) => t !== null);
    const load = this.element(at, terms.length > 0 ? terms.join(' + ') : '0i');
    return this.bind(node.dtype === 'bool' ? `(${load} != 0i)` : load);
  }

  lines(): string[] {
    return this.blocks[0];
  }
}

/**
 * As `unravel`, with the axis sizes read from the offsets uniform (`key` tells apart the unravels
 * of one kernel): kernels that differ only in their shapes are one WGSL text. One `grng_idiv` per
 * axis but the outermost, from the innermost out.
 */
export function unravelSized(
  e: Emitter,
  flat: string,
  shape: readonly number[],
  key: string,
): string[] {
  const index = shape.map(() => '0i');
  const axes = shape.flatMap((d, i) => (d === 1 ? [] : [i]));
  let rest = flat;
  for (let j = axes.length - 1; j >= 0; j--) {
    const i = axes[j];
    if (j === 0) {
      index[i] = rest; // flat < size: the outermost axis needs no wrap
      break;
    }
    const size = `i32(${e.dimension(`${key} size ${j}`, shape[i])})`;
    const reciprocal = `bitcast<f32>(${e.dimension(`${key} reciprocal ${j}`, f32Bits(1 / shape[i]))})`;
    const q = e.bind(`grng_idiv(${rest}, ${size}, ${reciprocal})`);
    index[i] = e.bind(`${rest} - ${q} * ${size}`);
    rest = q;
  }
  return index;
}

/** The bits of `x` rounded to f32, as a u32. */
function f32Bits(x: number): number {
  return new Uint32Array(Float32Array.of(x).buffer)[0];
}

/** Unravels `flat` into one index variable per axis of `shape` (row-major). */
export function unravel(e: Emitter, flat: string, shape: readonly number[]): string[] {
  const strides = stridesOf(shape);
  return shape.map((d, i) => {
    if (d === 1) return '0i';
    const q = strides[i] === 1 ? flat : `(${flat} / ${strides[i]}i)`;
    return e.bind(i === 0 ? q : `${q} % ${d}i`); // flat < size, so the outermost axis needs no wrap
  });
}
