// A float64 token model for references, written as plain loops on the scalar tape
// (reference-tape.ts), independent of the DSL it checks: inputs [B, T·d] read as T tokens of d,
// a stack of token-wise blocks (a dense layer with an activation, layerNorm, multi-head
// self-attention with q, k, v, o projections), mean-pooling over tokens and a dense head, with a
// mean cross-entropy or mean squared error loss (reference-model.ts's ReferenceTarget). One tape
// pass gives the loss, the gradient, H·v and the dense layers' taps (a with a ones column for a
// bias, g = B·∂L/∂s per token row).
import { GrngError } from '../core/errors.js';
import { targetRows, type ReferenceActivation, type ReferenceTarget } from './reference-model.js';
import { Tape, type Scalar } from './reference-tape.js';

/** One token-wise block of a token model. */
export type TokenBlock =
  | {
      readonly kind: 'dense';
      readonly out: number;
      readonly bias: boolean;
      readonly activation: ReferenceActivation;
    }
  /** PyTorch's LayerNorm over the last axis: weight, bias, eps 1e-5 (as nn.layerNorm). */
  | { readonly kind: 'norm' }
  /** nn.multiHeadAttention (projections with biases), optionally causal, optionally x + attn(x). */
  | {
      readonly kind: 'attention';
      readonly heads: number;
      readonly causal: boolean;
      readonly residual: boolean;
    };

/** Inputs [B, tokens·dim] → blocks → mean over tokens → dense head to `classes` logits. */
export interface TokenModel {
  readonly tokens: number;
  readonly dim: number;
  readonly blocks: readonly TokenBlock[];
  readonly classes: number;
  /** Whether the head has a bias. */
  readonly bias: boolean;
}

/** A dense layer's tap: rows = batch·positions, a [rows × in], g [rows × out], row-major. */
export interface TokenTap {
  readonly a: Float64Array;
  readonly g: Float64Array;
  readonly batch: number;
  /** Positions per sample (tokens for token-wise layers, 1 for the head). */
  readonly positions: number;
  readonly in: number;
  readonly out: number;
  /** Leaf names of the layer's W and b. */
  readonly w: string;
  readonly b?: string;
}

export interface TokenPass {
  readonly loss: number;
  /** Logits [batch × classes]. */
  readonly output: Float64Array;
  /** Per leaf, in tokenLeaves order. */
  readonly gradient: Float64Array[];
  /** ∇²L·v per leaf (zeros without a tangent). */
  readonly hvp: Float64Array[];
  readonly taps: TokenTap[];
}

export const LAYER_NORM_EPS = 1e-5;

type ShapeTree = number[] | { readonly [name: string]: ShapeTree };

const denseShapes = (inF: number, out: number, bias: boolean): ShapeTree =>
  bias ? { w: [out, inF], b: [out] } : { w: [out, inF] };

/** The model's widths: the token width entering each block, and the one leaving the last. */
export function tokenWidths(model: TokenModel): number[] {
  const widths = [model.dim];
  for (const block of model.blocks)
    widths.push(block.kind === 'dense' ? block.out : widths[widths.length - 1]);
  return widths;
}

/** The DSL model's parameter tree as shapes: { layers: [...blocks, head] }. */
function shapeTree(model: TokenModel): ShapeTree {
  const widths = tokenWidths(model);
  const layers: ShapeTree[] = model.blocks.map((block, i): ShapeTree => {
    const d = widths[i];
    if (block.kind === 'dense') return denseShapes(d, block.out, block.bias);
    if (block.kind === 'norm') return { weight: [d], bias: [d] };
    const projection = denseShapes(d, d, true);
    return { q: projection, k: projection, v: projection, o: projection };
  });
  layers.push(denseShapes(widths[widths.length - 1], model.classes, model.bias));
  return { layers: layers as unknown as ShapeTree };
}

const positive = (n: unknown): boolean => typeof n === 'number' && Number.isInteger(n) && n >= 1;

/**
 * A GrngError naming the first thing wrong with `model`: an unknown block kind would otherwise be
 * read as attention, and a missing width as undefined leaf shapes.
 */
function checkTokenModel(op: string, model: TokenModel): void {
  if (typeof model !== 'object' || model === null)
    throw new GrngError(
      op,
      `expected a token model { tokens, dim, blocks, classes, bias }, got ${String(model)}`,
    );
  for (const name of ['tokens', 'dim', 'classes'] as const)
    if (!positive(model[name]))
      throw new GrngError(op, `${name} must be a positive integer, got ${String(model[name])}`);
  if (!Array.isArray(model.blocks))
    throw new GrngError(op, `blocks must be an array, got ${typeof model.blocks}`);
  let width = model.dim;
  model.blocks.forEach((block: TokenBlock, i) => {
    const kind = (block as { kind?: unknown } | null)?.kind;
    if (kind === 'dense') {
      if (!positive((block as { out: unknown }).out))
        throw new GrngError(
          op,
          `block ${i}: out must be a positive integer, got ${String((block as { out: unknown }).out)}`,
        );
      width = (block as { out: number }).out;
    } else if (kind === 'attention') {
      const heads = (block as { heads: unknown }).heads;
      if (!positive(heads) || width % (heads as number) !== 0)
        throw new GrngError(
          op,
          `block ${i}: heads must be a positive integer dividing the width ${width}, got ${String(heads)}`,
        );
    } else if (kind !== 'norm')
      throw new GrngError(
        op,
        `block ${i}: kind must be 'dense', 'norm' or 'attention', got ${JSON.stringify(kind)}`,
      );
  });
}

/** Leaf names and shapes in flattenTree order (arrays by index, objects by sorted key). */
export function tokenLeaves(model: TokenModel): { names: string[]; shapes: number[][] } {
  checkTokenModel('tokenLeaves', model);
  const names: string[] = [];
  const shapes: number[][] = [];
  const walk = (node: ShapeTree | ShapeTree[], path: string) => {
    if (Array.isArray(node) && node.every((e) => typeof e === 'number')) {
      names.push(path);
      shapes.push(node as number[]);
    } else if (Array.isArray(node))
      (node as ShapeTree[]).forEach((child, i) => walk(child, `${path}.${i}`));
    else
      for (const key of Object.keys(node).sort())
        walk(node[key], path === '' ? key : `${path}.${key}`);
  };
  walk(shapeTree(model), '');
  return { names, shapes };
}

/**
 * One forward and backward pass on the tape. `leaves` (and `tangent`, the direction of H·v) are in
 * tokenLeaves order; `x` is [batch × tokens·dim], `target` what is differentiated (class labels,
 * regression targets or an output cotangent: ReferenceTarget).
 */
export function tokenPass(
  model: TokenModel,
  leaves: readonly Float64Array[],
  x: Float64Array,
  target: ReferenceTarget,
  tangent?: readonly Float64Array[],
): TokenPass {
  checkTokenModel('tokenPass', model);
  const { names, shapes } = tokenLeaves(model);
  const { tokens: T, dim } = model;
  const B = targetRows(target, model.classes);
  if (leaves.length !== names.length || x.length !== B * T * dim)
    throw new GrngError('tokenPass', `need ${names.length} leaves and x of ${B * T * dim} values`);
  // A short leaf would be read as undefined past its end: NaN everywhere, silently.
  shapes.forEach((shape, k) => {
    const want = shape.reduce((a, d) => a * d, 1);
    for (const [what, set] of [
      ['leaf', leaves],
      ['tangent', tangent],
    ] as const) {
      const got = set?.[k];
      if (set !== undefined && (!(got instanceof Float64Array) || got.length !== want))
        throw new GrngError(
          'tokenPass',
          `${what} ${k} (${names[k]}) must be a Float64Array of ${want} values ` +
            `[${shape.join(', ')}], got ${got instanceof Float64Array ? `${got.length} values` : typeof got}`,
        );
    }
  });
  const tape = new Tape();
  const nodes = new Map<string, Scalar[]>();
  names.forEach((name, k) =>
    nodes.set(
      name,
      Array.from(leaves[k], (v, i) => tape.input(v, tangent?.[k][i] ?? 0)),
    ),
  );
  const param = (name: string) => nodes.get(name) as Scalar[];
  const has = (name: string) => nodes.has(name);

  interface Recorded {
    readonly input: Scalar[][];
    readonly s: Scalar[][];
    readonly positions: number;
    readonly w: string;
    readonly b?: string;
  }
  const recorded: Recorded[] = [];
  // s = x Wᵀ + b on every row (B·positions rows), recording the tap.
  const dense = (rows: Scalar[][], prefix: string, out: number, positions: number) => {
    const w = param(`${prefix}.w`);
    const bName = `${prefix}.b`;
    const b = has(bName) ? param(bName) : undefined;
    const inF = rows[0].length;
    const s = rows.map((row) =>
      Array.from({ length: out }, (_, o) => {
        const z = tape.dot(w.slice(o * inF, (o + 1) * inF), row);
        return b === undefined ? z : tape.add(z, b[o]);
      }),
    );
    recorded.push({
      input: rows,
      s,
      positions,
      w: `${prefix}.w`,
      ...(b === undefined ? {} : { b: bName }),
    });
    return s;
  };
  const activate = (kind: ReferenceActivation, s: Scalar) =>
    kind === 'identity' ? s : tape[kind](s);

  const layerNorm = (rows: Scalar[][], prefix: string) => {
    const weight = param(`${prefix}.weight`);
    const bias = param(`${prefix}.bias`);
    const eps = tape.constant(LAYER_NORM_EPS);
    return rows.map((row) => {
      const d = row.length;
      const mean = tape.scale(tape.sum(row), 1 / d);
      const centered = row.map((e) => tape.sub(e, mean));
      const variance = tape.scale(tape.dot(centered, centered), 1 / d);
      const r = tape.rsqrt(tape.add(variance, eps));
      return centered.map((c, j) => tape.add(tape.mul(tape.mul(c, r), weight[j]), bias[j]));
    });
  };

  const attention = (
    rows: Scalar[][],
    prefix: string,
    block: { heads: number; causal: boolean },
  ) => {
    const d = rows[0].length;
    const q = dense(rows, `${prefix}.q`, d, T);
    const k = dense(rows, `${prefix}.k`, d, T);
    const v = dense(rows, `${prefix}.v`, d, T);
    const hd = d / block.heads;
    const merged: Scalar[][] = rows.map(() => []);
    for (let n = 0; n < B; n++)
      for (let h = 0; h < block.heads; h++) {
        const cols = (row: Scalar[]) => row.slice(h * hd, (h + 1) * hd);
        for (let t = 0; t < T; t++) {
          const seen = block.causal ? t + 1 : T;
          const scores = Array.from({ length: seen }, (_, u) =>
            tape.scale(tape.dot(cols(q[n * T + t]), cols(k[n * T + u])), 1 / Math.sqrt(hd)),
          );
          // softmax as exp(x − logsumexp x), the shift m a constant (stop-gradient).
          const m = tape.constant(Math.max(...scores.map((s) => tape.val(s))));
          const lse = tape.add(tape.log(tape.sum(scores.map((s) => tape.exp(tape.sub(s, m))))), m);
          const p = scores.map((s) => tape.exp(tape.sub(s, lse)));
          for (let j = 0; j < hd; j++)
            merged[n * T + t].push(
              tape.dot(
                p,
                p.map((_, u) => v[n * T + u][h * hd + j]),
              ),
            );
        }
      }
    return dense(merged, `${prefix}.o`, d, T);
  };

  // Tokens: row n·T + t holds x[n, t·d : (t + 1)·d].
  let h: Scalar[][] = Array.from({ length: B * T }, (_, r) =>
    Array.from(x.subarray(r * dim, (r + 1) * dim), (e) => tape.constant(e)),
  );
  model.blocks.forEach((block, i) => {
    const prefix = `layers.${i}`;
    if (block.kind === 'dense')
      h = dense(h, prefix, block.out, T).map((row) =>
        row.map((s) => activate(block.activation, s)),
      );
    else if (block.kind === 'norm') h = layerNorm(h, prefix);
    else {
      const y = attention(h, prefix, block);
      h = block.residual ? y.map((row, r) => row.map((e, j) => tape.add(h[r][j], e))) : y;
    }
  });
  const d = h[0].length;
  const pooled = Array.from({ length: B }, (_, n) =>
    Array.from({ length: d }, (_, j) =>
      tape.scale(tape.sum(Array.from({ length: T }, (_, t) => h[n * T + t][j])), 1 / T),
    ),
  );
  const logits = dense(pooled, `layers.${model.blocks.length}`, model.classes, 1);

  const loss = outputLoss(tape, target, logits, model.classes);
  const adj = tape.backward(loss);

  const taps = recorded.map((r): TokenTap => {
    const bias = r.b !== undefined;
    const inF = r.input[0].length;
    const cols = inF + (bias ? 1 : 0);
    const out = r.s[0].length;
    const a = new Float64Array(r.input.length * cols);
    const g = new Float64Array(r.input.length * out);
    r.input.forEach((row, i) => {
      row.forEach((e, j) => (a[i * cols + j] = tape.val(e)));
      if (bias) a[i * cols + inF] = 1;
      r.s[i].forEach((s, o) => (g[i * out + o] = B * adj.gradient(s)));
    });
    return {
      a,
      g,
      batch: B,
      positions: r.positions,
      in: cols,
      out,
      w: r.w,
      ...(r.b === undefined ? {} : { b: r.b }),
    };
  });
  const part = (f: (s: Scalar) => number) => names.map((name) => Float64Array.from(param(name), f));
  return {
    loss: tape.val(loss),
    output: Float64Array.from(logits.flat(), (s) => tape.val(s)),
    gradient: part(adj.gradient),
    hvp: part(adj.hvp),
    taps,
  };
}

/** The loss of the outputs z [batch][classes] on the tape (ReferenceTarget). */
function outputLoss(
  tape: Tape,
  target: ReferenceTarget,
  z: readonly (readonly Scalar[])[],
  classes: number,
): Scalar {
  const B = z.length;
  if (target instanceof Float64Array) {
    // mean((z − y)²) over all B·C elements.
    const squares = z.flatMap((row, n) =>
      row.map((s, c) => {
        const r = tape.sub(s, tape.constant(target[n * classes + c]));
        return tape.mul(r, r);
      }),
    );
    return tape.scale(tape.sum(squares), 1 / (B * classes));
  }
  if (!(target instanceof Int32Array))
    return tape.sum(
      z.flatMap((row, n) => row.map((s, c) => tape.scale(s, target.cotangent[n * classes + c]))),
    );
  const terms = z.map((row, n) => {
    const label = target[n];
    if (!(label >= 0 && label < classes))
      throw new GrngError('tokenPass', `label ${label} of row ${n} is not in [0, ${classes})`);
    const m = tape.constant(Math.max(...row.map((s) => tape.val(s))));
    const lse = tape.add(tape.log(tape.sum(row.map((s) => tape.exp(tape.sub(s, m))))), m);
    return tape.sub(lse, row[label]);
  });
  return tape.scale(tape.sum(terms), 1 / B);
}
