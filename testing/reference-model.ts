// A float64 model engine for references, independent of the DSL it helps to check: stacks of dense
// and LoRA layers with tanh, relu or exact-gelu activations and a mean cross-entropy or mean
// squared error loss (or a linear functional of the output, for vector-Jacobian products), written
// as plain loops. Backprop runs on dual numbers (value, tangent), so one pass gives the gradient
// and, with the parameters' tangent set to v, the Hessian-vector product H·v (forward over
// reverse).
// Every layer application records its tap as ctx.taps does: a (with a ones column when the layer
// has a bias) and the per-sample pre-activation gradients g = B·∂L/∂s.
import { GrngError } from '../core/errors.js';

export type ReferenceActivation = 'identity' | 'tanh' | 'relu' | 'gelu';

/** y = act(x Wᵀ + b): W [out × in], b [out] when `bias`. */
export interface ReferenceDense {
  readonly kind: 'dense';
  readonly in: number;
  readonly out: number;
  readonly bias: boolean;
  readonly activation: ReferenceActivation;
}

/**
 * y = act(x W₀ᵀ + b₀ + (α/r)·(x Aᵀ) Bᵀ) with W₀ [out × in], b₀ [out] frozen and A [rank × in],
 * B [out × rank] trained (two taps: A sees x, B sees x Aᵀ).
 */
export interface ReferenceLora {
  readonly kind: 'lora';
  readonly in: number;
  readonly out: number;
  readonly rank: number;
  readonly alpha: number;
  readonly w0: Float64Array;
  readonly b0?: Float64Array;
  readonly activation: ReferenceActivation;
}

export type ReferenceLayer = ReferenceDense | ReferenceLora;

/**
 * What a pass differentiates: class labels [batch] (Int32Array) for the mean cross-entropy of the
 * logits; real targets [batch × out] (Float64Array) for the mean squared error over every element,
 * mean((z − y)²); or `{ cotangent: u }` [batch × out] for ⟨u, z⟩, whose gradient is the output's
 * vector-Jacobian product Jᵀu.
 */
export type ReferenceTarget = Int32Array | Float64Array | { readonly cotangent: Float64Array };

/** A layer's trainable values: dense { w, b? }, LoRA { a, b } (row-major). */
export type ReferenceLayerValues = Readonly<Record<string, Float64Array>>;

/** One tap: a [batch × cols] with cols = in (+ 1 for a bias), g [batch × out], row-major. */
export interface ReferenceTap {
  readonly a: Float64Array;
  readonly g: Float64Array;
  readonly batch: number;
  readonly in: number;
  readonly out: number;
  /** Which layer (index into the stack) and which of its values the tap's W and b are. */
  readonly layer: number;
  readonly w: string;
  readonly b?: string;
}

export interface ReferencePass {
  readonly loss: number;
  /** Logits [batch × classes]. */
  readonly output: Float64Array;
  readonly gradient: ReferenceLayerValues[];
  /** ∇²L·v when a tangent v was given (zeros otherwise). */
  readonly hvp: ReferenceLayerValues[];
  readonly taps: ReferenceTap[];
}

/** The names and shapes of a layer's trainable values. */
export function layerValueShapes(layer: ReferenceLayer): Record<string, number[]> {
  checkLayer('layerValueShapes', layer);
  if (layer.kind === 'lora') return { a: [layer.rank, layer.in], b: [layer.out, layer.rank] };
  return layer.bias ? { w: [layer.out, layer.in], b: [layer.out] } : { w: [layer.out, layer.in] };
}

/** A GrngError naming the first thing wrong with a layer (a JavaScript caller passes anything). */
function checkLayer(op: string, layer: ReferenceLayer, where = 'layer'): void {
  if (
    typeof layer !== 'object' ||
    layer === null ||
    (layer.kind !== 'dense' && layer.kind !== 'lora')
  )
    throw new GrngError(
      op,
      `${where} must be { kind: 'dense' | 'lora', ... }, got kind ` +
        `${JSON.stringify((layer as { kind?: unknown } | null)?.kind)}`,
    );
  const sizes: [string, unknown][] = [
    ['in', layer.in],
    ['out', layer.out],
    ...(layer.kind === 'lora' ? ([['rank', layer.rank]] as [string, unknown][]) : []),
  ];
  for (const [name, n] of sizes)
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1)
      throw new GrngError(op, `${where}: ${name} must be a positive integer, got ${String(n)}`);
}

// Dual arrays: a value and a tangent of the same length.
interface Dual {
  readonly v: Float64Array;
  readonly d: Float64Array;
}
const dual = (n: number): Dual => ({ v: new Float64Array(n), d: new Float64Array(n) });

/** C += A·Bᵀ for A [m × k], B [n × k] (values only). */
function addABt(
  c: Float64Array,
  a: Float64Array,
  b: Float64Array,
  m: number,
  k: number,
  n: number,
) {
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += a[i * k + p] * b[j * k + p];
      c[i * n + j] += s;
    }
}
/** C += A·B for A [m × k], B [k × n]. */
function addAB(c: Float64Array, a: Float64Array, b: Float64Array, m: number, k: number, n: number) {
  for (let i = 0; i < m; i++)
    for (let p = 0; p < k; p++) {
      const x = a[i * k + p];
      for (let j = 0; j < n; j++) c[i * n + j] += x * b[p * n + j];
    }
}
/** C += Aᵀ·B for A [k × m], B [k × n]. */
function addAtB(
  c: Float64Array,
  a: Float64Array,
  b: Float64Array,
  m: number,
  k: number,
  n: number,
) {
  for (let p = 0; p < k; p++)
    for (let i = 0; i < m; i++) {
      const x = a[p * m + i];
      for (let j = 0; j < n; j++) c[i * n + j] += x * b[p * n + j];
    }
}

type Product = typeof addAB;
/** The dual of a matrix product: (A, Ȧ)·(B, Ḃ) = (AB, ȦB + AḂ), added into c. */
function dualProduct(product: Product, c: Dual, a: Dual, b: Dual, m: number, k: number, n: number) {
  product(c.v, a.v, b.v, m, k, n);
  product(c.d, a.d, b.v, m, k, n);
  product(c.d, a.v, b.d, m, k, n);
}

// erf in float64: the all-positive series erf(x) = 2/√π·e^{−x²}·Σ (2x²)ⁿ·x / (1·3·…·(2n+1)) below
// |x| = 3 (no cancellation), and Lentz's continued fraction for erfc above.
function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 3) {
    let term = ax;
    let sum = ax;
    for (let n = 1; term > 1e-17 * sum; n++) {
      term *= (2 * ax * ax) / (2 * n + 1);
      sum += term;
    }
    return Math.sign(x) * ((2 / Math.sqrt(Math.PI)) * Math.exp(-ax * ax) * sum);
  }
  // erfc(x) = e^{−x²}/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …)))), evaluated by Lentz.
  const tiny = 1e-300;
  let f = ax;
  let c = ax;
  let d = 0;
  for (let n = 1; n < 200; n++) {
    const an = n / 2;
    d = ax + an * d;
    d = 1 / (Math.abs(d) < tiny ? tiny : d);
    c = ax + an / c;
    if (Math.abs(c) < tiny) c = tiny;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f;
  return Math.sign(x) * (1 - erfc);
}

/** f, f′ and f″ of an activation at s. */
function activate(kind: ReferenceActivation, s: number): [number, number, number] {
  switch (kind) {
    case 'identity':
      return [s, 1, 0];
    case 'tanh': {
      const y = Math.tanh(s);
      return [y, 1 - y * y, -2 * y * (1 - y * y)];
    }
    case 'relu':
      // relu is max(s, 0), whose derivative splits a tie: ½ at s = 0 exactly (as JAX's), which
      // values on a 2^-16 grid do hit (a zero weight row, a zero input).
      return s > 0 ? [s, 1, 0] : s === 0 ? [0, 0.5, 0] : [0, 0, 0];
    case 'gelu': {
      const phi = Math.exp((-s * s) / 2) / Math.sqrt(2 * Math.PI);
      const cdf = 0.5 * (1 + erf(s / Math.SQRT2));
      return [s * cdf, cdf + s * phi, phi * (2 - s * s)];
    }
  }
}

interface LayerRecord {
  readonly input: Dual;
  readonly s: Dual;
  /** LoRA: u = x Aᵀ. */
  readonly u?: Dual;
}

/**
 * One forward and backward pass on dual numbers. `tangent` (shaped like `values`) is the direction
 * of the Hessian-vector product; without it the tangents are zero. `target` says what is
 * differentiated (ReferenceTarget) for the rows of `x` [batch × in].
 */
export function referencePass(
  layers: readonly ReferenceLayer[],
  values: readonly ReferenceLayerValues[],
  x: Float64Array,
  target: ReferenceTarget,
  tangent?: readonly ReferenceLayerValues[],
): ReferencePass {
  if (layers.length === 0 || values.length !== layers.length)
    throw new GrngError('referencePass', `need one set of values per layer (${layers.length})`);
  // Sizes are checked up front: the loops below would read undefined past a short array (NaN).
  layers.forEach((layer, i) => {
    checkLayer('referencePass', layer, `layer ${i}`);
    if (
      layer.kind === 'lora' &&
      (!(layer.w0 instanceof Float64Array) ||
        layer.w0.length !== layer.out * layer.in ||
        (layer.b0 !== undefined && layer.b0.length !== layer.out))
    )
      throw new GrngError(
        'referencePass',
        `layer ${i}: w0 must hold ${layer.out}×${layer.in} values and b0 (if any) ${layer.out}`,
      );
    if (i > 0 && layer.in !== layers[i - 1].out)
      throw new GrngError(
        'referencePass',
        `layer ${i} takes ${layer.in} inputs but layer ${i - 1} gives ${layers[i - 1].out}`,
      );
    for (const [name, shape] of Object.entries(layerValueShapes(layer))) {
      const want = shape.reduce((a, d) => a * d, 1);
      for (const [what, set] of [
        ['values', values],
        ['tangent', tangent],
      ] as const) {
        if (what === 'tangent' && set?.[i]?.[name] === undefined) continue;
        const got = set?.[i]?.[name];
        if (!(got instanceof Float64Array) || got.length !== want)
          throw new GrngError(
            'referencePass',
            `${what}[${i}].${name} must be a Float64Array of ${want} values ` +
              `[${shape.join(', ')}], got ${got instanceof Float64Array ? `${got.length} values` : typeof got}`,
          );
      }
    }
  });
  const batch = x.length / layers[0].in;
  const outputs = layers[layers.length - 1].out;
  if (!Number.isInteger(batch) || targetRows(target, outputs) !== batch)
    throw new GrngError(
      'referencePass',
      `x has ${x.length} values for ${layers[0].in} inputs, the target ` +
        `${targetRows(target, outputs)} rows of ${outputs} outputs`,
    );
  const param = (i: number, name: string): Dual => {
    const v = values[i][name];
    const d = tangent?.[i]?.[name] ?? new Float64Array(v.length);
    return { v, d };
  };
  const records: LayerRecord[] = [];
  let h: Dual = { v: x, d: new Float64Array(x.length) };
  layers.forEach((layer, i) => {
    const s = dual(batch * layer.out);
    let u: Dual | undefined;
    if (layer.kind === 'dense') {
      dualProduct(addABt, s, h, param(i, 'w'), batch, layer.in, layer.out);
      if (layer.bias) {
        const b = param(i, 'b');
        for (let r = 0; r < batch; r++)
          for (let j = 0; j < layer.out; j++) {
            s.v[r * layer.out + j] += b.v[j];
            s.d[r * layer.out + j] += b.d[j];
          }
      }
    } else {
      const frozen: Dual = { v: layer.w0, d: new Float64Array(layer.w0.length) };
      dualProduct(addABt, s, h, frozen, batch, layer.in, layer.out);
      if (layer.b0 !== undefined)
        for (let r = 0; r < batch; r++)
          for (let j = 0; j < layer.out; j++) s.v[r * layer.out + j] += layer.b0[j];
      u = dual(batch * layer.rank);
      dualProduct(addABt, u, h, param(i, 'a'), batch, layer.in, layer.rank);
      const v = dual(batch * layer.out);
      dualProduct(addABt, v, u, param(i, 'b'), batch, layer.rank, layer.out);
      const scale = layer.alpha / layer.rank;
      for (let k = 0; k < v.v.length; k++) {
        s.v[k] += scale * v.v[k];
        s.d[k] += scale * v.d[k];
      }
    }
    records.push({ input: h, s, u });
    const next = dual(s.v.length);
    for (let k = 0; k < s.v.length; k++) {
      const [f, df] = activate(layer.activation, s.v[k]);
      next.v[k] = f;
      next.d[k] = df * s.d[k];
    }
    h = next;
  });

  const { loss, delta: seed } = outputLoss(target, h, batch, outputs);
  let delta = seed;
  const output = h.v;

  const gradient: Record<string, Dual>[] = layers.map(() => ({}));
  const taps: ReferenceTap[] = [];
  for (let i = layers.length - 1; i >= 0; i--) {
    const layer = layers[i];
    const { input, s, u } = records[i];
    // δs = δh ⊙ f′(s); its tangent adds δh ⊙ f″(s) ⊙ ṡ.
    const ds = dual(s.v.length);
    for (let k = 0; k < s.v.length; k++) {
      const [, df, ddf] = activate(layer.activation, s.v[k]);
      ds.v[k] = delta.v[k] * df;
      ds.d[k] = delta.d[k] * df + delta.v[k] * ddf * s.d[k];
    }
    const below = dual(batch * layer.in);
    if (layer.kind === 'dense') {
      const gw = dual(layer.out * layer.in);
      dualProduct(addAtB, gw, ds, input, layer.out, batch, layer.in);
      gradient[i].w = gw;
      if (layer.bias) {
        const gb = dual(layer.out);
        for (let r = 0; r < batch; r++)
          for (let j = 0; j < layer.out; j++) {
            gb.v[j] += ds.v[r * layer.out + j];
            gb.d[j] += ds.d[r * layer.out + j];
          }
        gradient[i].b = gb;
      }
      dualProduct(addAB, below, ds, param(i, 'w'), batch, layer.out, layer.in);
      taps.unshift(tapOf(input.v, ds.v, batch, layer.in, layer.out, layer.bias, i, 'w', 'b'));
    } else if (u !== undefined) {
      const scale = layer.alpha / layer.rank;
      const dv: Dual = { v: ds.v.map((e) => scale * e), d: ds.d.map((e) => scale * e) };
      const gb = dual(layer.out * layer.rank);
      dualProduct(addAtB, gb, dv, u, layer.out, batch, layer.rank);
      const du = dual(batch * layer.rank);
      dualProduct(addAB, du, dv, param(i, 'b'), batch, layer.out, layer.rank);
      const ga = dual(layer.rank * layer.in);
      dualProduct(addAtB, ga, du, input, layer.rank, batch, layer.in);
      gradient[i].a = ga;
      gradient[i].b = gb;
      const frozen: Dual = { v: layer.w0, d: new Float64Array(layer.w0.length) };
      dualProduct(addAB, below, ds, frozen, batch, layer.out, layer.in);
      dualProduct(addAB, below, du, param(i, 'a'), batch, layer.rank, layer.in);
      taps.unshift(
        tapOf(input.v, du.v, batch, layer.in, layer.rank, false, i, 'a'),
        tapOf(u.v, dv.v, batch, layer.rank, layer.out, false, i, 'b'),
      );
    }
    delta = below;
  }
  const part = (key: 'v' | 'd') =>
    gradient.map((g) => Object.fromEntries(Object.entries(g).map(([k, d]) => [k, d[key]])));
  return { loss, output, gradient: part('v'), hvp: part('d'), taps };
}

/** A tap from a layer's input rows and its δs rows (δs = ∂L/∂s, so g = B·δs). */
function tapOf(
  input: Float64Array,
  ds: Float64Array,
  batch: number,
  inFeatures: number,
  out: number,
  bias: boolean,
  layer: number,
  w: string,
  b?: string,
): ReferenceTap {
  const cols = inFeatures + (bias ? 1 : 0);
  const a = new Float64Array(batch * cols);
  for (let r = 0; r < batch; r++) {
    a.set(input.subarray(r * inFeatures, (r + 1) * inFeatures), r * cols);
    if (bias) a[r * cols + inFeatures] = 1;
  }
  return {
    a,
    g: ds.map((e) => batch * e),
    batch,
    in: cols,
    out,
    layer,
    w,
    ...(bias && b !== undefined ? { b } : {}),
  };
}

/** How many rows a target covers. */
export function targetRows(target: ReferenceTarget, outputs: number): number {
  if (target instanceof Int32Array) return target.length;
  const values = target instanceof Float64Array ? target : target.cotangent;
  return values.length / outputs;
}

/** The loss of the outputs h [batch × classes] and its dual gradient δ = ∂L/∂h. */
function outputLoss(
  target: ReferenceTarget,
  h: Dual,
  batch: number,
  classes: number,
): { loss: number; delta: Dual } {
  const delta = dual(h.v.length);
  let loss = 0;
  if (target instanceof Float64Array) {
    // mean((z − y)²) over all B·C elements: δ = 2(z − y)/(B·C), and its tangent 2ż/(B·C).
    const n = batch * classes;
    for (let k = 0; k < n; k++) {
      const r = h.v[k] - target[k];
      loss += (r * r) / n;
      delta.v[k] = (2 * r) / n;
      delta.d[k] = (2 * h.d[k]) / n;
    }
    return { loss, delta };
  }
  if (!(target instanceof Int32Array)) {
    // ⟨u, z⟩: δ = u, constant.
    target.cotangent.forEach((u, k) => {
      loss += u * h.v[k];
      delta.v[k] = u;
    });
    return { loss, delta };
  }
  // Mean cross-entropy of the logits: δ = (softmax − onehot)/B.
  for (let r = 0; r < batch; r++) {
    const row = h.v.subarray(r * classes, (r + 1) * classes);
    const top = Math.max(...row);
    let z = 0;
    for (const value of row) z += Math.exp(value - top);
    const label = target[r];
    if (!(label >= 0 && label < classes))
      throw new GrngError('referencePass', `label ${label} of row ${r} is not in [0, ${classes})`);
    loss += (Math.log(z) + top - row[label]) / batch;
    let pDot = 0;
    const p = Array.from(row, (value) => Math.exp(value - top) / z);
    for (let j = 0; j < classes; j++) pDot += p[j] * h.d[r * classes + j];
    for (let j = 0; j < classes; j++) {
      delta.v[r * classes + j] = (p[j] - (j === label ? 1 : 0)) / batch;
      delta.d[r * classes + j] = (p[j] * (h.d[r * classes + j] - pDot)) / batch;
    }
  }
  return { loss, delta };
}
