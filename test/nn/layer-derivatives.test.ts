// First and second derivatives through the transformer and convolution layers (attention with and
// without the causal mask, layer norm, gelu inside an encoder block, conv2d with stride and
// padding, max and average pooling, the embedding lookup), on the float64 interpreter against
// central differences, on random shapes. For each layer, f(θ) = Σ w ⊙ layer(θ) with a random
// weighting w, θ all of its float inputs (parameters and activations), and we check
//   1. grad(f)                   vs central differences of f                (reverse mode)
//   2. hvp(f)(θ, v)              vs central differences of grad(f) along v   (forward over reverse)
//   3. grad(θ ↦ ⟨grad f(θ), v⟩)  vs the same                                 (reverse over reverse)
// Tolerance: h = 1e-5 central differences carry h²|f'''|/6 + ε|f|/h ≈ 1e-10 for the O(1–10)
// values here; < 1e-6 in maxScaledError leaves 10⁴× margin, while a wrong rule errs by O(0.01–1).
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { add, constant, grad, hvp, mul, nn, sum, type Tensor } from '../../index.js';
import { HostArray } from '../../core/host-array.js';
import { flattenTree } from '../../core/tree.js';
import { hostFunction, type ArgSpec } from '../support/host-function.js';
import { centralDirectional, centralGradient, maxScaledError } from '../support/numeric.js';
import { int, prng, seedArb, uniform } from '../support/random.js';

interface LayerCase {
  /** Float inputs: the layer's parameters (from init) and its input. */
  readonly shapes: readonly (readonly number[])[];
  readonly values: readonly Float64Array[];
  /** Integer inputs held fixed (token ids). */
  readonly fixed?: { readonly spec: ArgSpec; readonly value: Float64Array };
  /** The layer's output from the float inputs (and the fixed one). */
  apply(xs: readonly Tensor[], fixed?: Tensor): Tensor;
}

const isHost = (x: unknown): x is HostArray => x instanceof HostArray;

/** A model's parameters as flat inputs, and the way back to its tree. */
function paramsOf(tree: unknown) {
  const { leaves, rebuild } = flattenTree('test', tree, isHost, 'a host array');
  return { shapes: leaves.map((l) => l.shape), values: leaves.map((l) => l.data), rebuild };
}

const worst: Record<string, number> = {};

function check(name: string, c: LayerCase, rng: () => number): void {
  const sizes = c.values.map((v) => v.length);
  const total = sizes.reduce((a, n) => a + n, 0);
  const split = (flat: Float64Array) => {
    let at = 0;
    return sizes.map((n) => flat.slice(at, (at += n)));
  };
  const join = (parts: readonly Float64Array[]) => {
    const out = new Float64Array(total);
    let at = 0;
    for (const p of parts) out.set(p, (at += p.length) - p.length);
    return out;
  };
  const specs: ArgSpec[] = c.shapes.map((shape) => ({ shape }));
  const outShape = (() => {
    let shape: readonly number[] = [];
    hostFunction(
      (...t) => {
        const y = c.apply(t.slice(0, sizes.length), t[sizes.length]);
        shape = y.shape;
        return y;
      },
      c.fixed === undefined ? specs : [...specs, c.fixed.spec],
    );
    return shape;
  })();
  const weights = uniform(
    rng,
    outShape.reduce((a, d) => a * d, 1),
  );
  const all = c.fixed === undefined ? specs : [...specs, c.fixed.spec];
  const fixed = c.fixed === undefined ? [] : [c.fixed.value];
  const objective = (t: readonly Tensor[], f?: Tensor): Tensor => {
    const y = c.apply(t, f);
    return sum(mul(y, constant(weights, y.shape)));
  };
  const f = hostFunction((...t) => objective(t.slice(0, sizes.length), t[sizes.length]), all);
  const g = hostFunction(
    (...t) => grad((xs: Tensor[]) => objective(xs, t[sizes.length]))(t.slice(0, sizes.length)),
    all,
  );
  const h = hostFunction(
    (...t) =>
      hvp((xs: Tensor[]) => objective(xs, t[2 * sizes.length]))(
        t.slice(0, sizes.length),
        t.slice(sizes.length, 2 * sizes.length),
      ),
    [...specs, ...specs, ...(c.fixed === undefined ? [] : [c.fixed.spec])],
  );
  const gg = hostFunction(
    (...t) => {
      const v = t.slice(sizes.length, 2 * sizes.length);
      const inner = (xs: Tensor[]) => {
        const gs = grad((ys: Tensor[]) => objective(ys, t[2 * sizes.length]))(xs);
        return gs.reduce<Tensor>((acc, gi, i) => add(acc, sum(mul(gi, v[i]))), constant(0));
      };
      return grad(inner)(t.slice(0, sizes.length));
    },
    [...specs, ...specs, ...(c.fixed === undefined ? [] : [c.fixed.spec])],
  );
  const x = join(c.values);
  const v = uniform(rng, total);
  const scalarF = (flat: Float64Array) => f(...split(flat), ...fixed)[0][0];
  const gradF = (flat: Float64Array) => join(g(...split(flat), ...fixed));
  const fdGrad = centralGradient(scalarF, x, 1e-5);
  const fdHv = centralDirectional(gradF, x, v, 1e-5);
  const errors = {
    grad: maxScaledError(gradF(x), fdGrad),
    hvp: maxScaledError(join(h(...split(x), ...split(v), ...fixed)), fdHv),
    gradOfGrad: maxScaledError(join(gg(...split(x), ...split(v), ...fixed)), fdHv),
  };
  for (const [k, e] of Object.entries(errors)) {
    worst[`${name} ${k}`] = Math.max(worst[`${name} ${k}`] ?? 0, e);
    expect(e, `${name}: ${k}`).toBeLessThan(1e-6);
  }
}

/** Parameters from init with every entry redrawn (zero biases and unit scales hide mistakes). */
function randomized(tree: unknown, rng: () => number) {
  const p = paramsOf(tree);
  return { ...p, values: p.values.map((v) => uniform(rng, v.length)) };
}

/** A case for a model-shaped layer: its parameters and an input x of `shape`. */
function modelCase(
  layer: { init(seed: number): unknown; apply(params: never, x: Tensor): Tensor },
  shape: readonly number[],
  rng: () => number,
  x = uniform(
    rng,
    shape.reduce((a, d) => a * d, 1),
    -2,
    2,
  ),
): LayerCase {
  const p = randomized(layer.init(int(rng, 0, 1000)), rng);
  return {
    shapes: [...p.shapes, shape],
    values: [...p.values, x],
    apply: (xs) => layer.apply(p.rebuild(xs.slice(0, -1)) as never, xs[xs.length - 1]),
  };
}

/** Distinct values spaced ≥ 0.05 apart in random order: no ties or kinks within h of a max. */
function distinct(rng: () => number, n: number): Float64Array {
  const out = Float64Array.from({ length: n }, (_, i) => 0.05 * (i - n / 2));
  for (let i = n - 1; i > 0; i--) {
    const j = int(rng, 0, i);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

describe('derivatives of the transformer and convolution layers (float64, central differences)', () => {
  const layers: Record<string, (rng: () => number) => LayerCase> = {
    multiHeadAttention: (rng) => {
      const heads = int(rng, 1, 2);
      const dim = heads * int(rng, 1, 2);
      const causal = rng() < 0.5;
      const shape = [int(rng, 1, 2), int(rng, 1, 4), dim];
      return modelCase(nn.multiHeadAttention(dim, heads, { causal }), shape, rng);
    },
    layerNorm: (rng) => {
      const d = int(rng, 2, 5);
      return modelCase(nn.layerNorm(d), [int(rng, 1, 3), int(rng, 1, 3), d], rng);
    },
    'encoderBlock (gelu)': (rng) => {
      const heads = int(rng, 1, 2);
      const dim = 2 * heads;
      const block = nn.encoderBlock(dim, heads, { mlpDim: int(rng, 1, 4), causal: rng() < 0.5 });
      return modelCase(block, [1, int(rng, 1, 3), dim], rng);
    },
    conv2d: (rng) => {
      const [h, w, c] = [int(rng, 2, 5), int(rng, 2, 5), int(rng, 1, 2)];
      const kernel: [number, number] = [int(rng, 1, Math.min(3, h)), int(rng, 1, Math.min(3, w))];
      const conv = nn.conv2d(c, int(rng, 1, 2), kernel, {
        stride: [int(rng, 1, 2), int(rng, 1, 2)],
        padding: [int(rng, 0, 1), int(rng, 0, 1)],
      });
      return modelCase(conv, [int(rng, 1, 2), h, w, c], rng);
    },
    maxPool2d: (rng) => {
      const size = int(rng, 1, 2);
      const shape = [int(rng, 1, 2), size * int(rng, 1, 2), size * int(rng, 1, 3), int(rng, 1, 2)];
      const n = shape.reduce((a, d) => a * d, 1);
      return {
        shapes: [shape],
        values: [distinct(rng, n)],
        apply: ([x]) => nn.maxPool2d(x, size),
      };
    },
    avgPool2d: (rng) => {
      const size = int(rng, 1, 3);
      const shape = [int(rng, 1, 2), size * int(rng, 1, 2), size, int(rng, 1, 2)];
      return {
        shapes: [shape],
        values: [
          uniform(
            rng,
            shape.reduce((a, d) => a * d, 1),
          ),
        ],
        apply: ([x]) => nn.avgPool2d(x, size),
      };
    },
    embedding: (rng) => {
      const [vocab, dim] = [int(rng, 1, 5), int(rng, 1, 3)];
      const idsShape = [int(rng, 1, 2), int(rng, 1, 4)];
      const ids = Float64Array.from({ length: idsShape[0] * idsShape[1] }, () =>
        int(rng, 0, vocab - 1),
      );
      const table = nn.embedding(vocab, dim);
      const p = paramsOf(table.init(0));
      return {
        shapes: p.shapes,
        values: p.values,
        fixed: { spec: { shape: idsShape, dtype: 'i32' }, value: ids },
        apply: (xs, fixed) => table.apply(p.rebuild(xs) as never, fixed as Tensor),
      };
    },
  };
  for (const [name, build] of Object.entries(layers)) {
    test(`${name}: grad, hvp and grad-of-grad match central differences`, () => {
      fc.assert(
        fc.property(seedArb, (seed) => check(name, build(prng(seed)), prng(seed + 1))),
        { numRuns: 15 },
      );
      const mine = Object.entries(worst).filter(([k]) => k.startsWith(`${name} `));
      console.log(`${name} worst scaled errors`, JSON.stringify(Object.fromEntries(mine)));
    });
  }
});
