// Curvature taps of layers that share weights over positions (docs/algorithms.md §10.8): the
// K-FAC-expand and -reduce factors grng builds for an attention block's q, k, v, o projections and
// for a convolution (KFC) against the float64 references of ./shared-layer-reference.ts, which
// record inputs token by token / patch by patch and take g = B·∂L/∂s from central differences
// (W2, W5); T = 1 taps equal today's dense ones bitwise (W1); reduce equals expand on inputs that
// are constant over positions with g summed (W3).
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  crossEntropy,
  grad,
  input,
  kroneckerFactors,
  layerGradient,
  mean,
  nn,
  tanh,
  type LayerTap,
  type Tensor,
} from '../../index.js';
import { HostArray } from '../../core/host-array.js';
import { flattenTree } from '../../core/tree.js';
import type { Model } from '../../dsl/nn/layers.js';
import type { ParamTree } from '../../dsl/optimizer.js';
import { isTensor } from '../../dsl/tensor.js';
import { trainingExtras } from '../../runtime/training-context.js';
import {
  attentionClassifier,
  attentionParams,
  denseRef,
  referenceParams,
} from './attention-problem.js';
import { hostFunction } from '../support/host-function.js';
import { int, prng, seedArb, uniform } from '../support/random.js';
import {
  attentionForward,
  convDirect,
  convForward,
  convOutput,
  expandFactors,
  outputGradients,
  reduceFactors,
  sharedGradient,
  type ConvGeometry,
  type Inputs,
  type Nudge,
} from './shared-layer-reference.js';

const isHost = (x: unknown): x is HostArray => x instanceof HostArray;

/** max |got − want| / max(1, |want|) over all entries. */
function scaledError(got: ArrayLike<number>, want: ArrayLike<number>): number {
  expect(got.length).toBe(want.length);
  let worst = 0;
  for (let i = 0; i < want.length; i++)
    worst = Math.max(worst, Math.abs(got[i] - want[i]) / Math.max(1, Math.abs(want[i])));
  return worst;
}

const worst: Record<string, number> = {};
const track = (name: string, e: number) => ((worst[name] = Math.max(worst[name] ?? 0, e)), e);

/**
 * Per tap: a, g, expand and reduce factors, the layer gradient from the tap and autodiff's
 * gradient of the parameters, all on the float64 interpreter.
 */
function grngTaps(
  model: Model<ParamTree>,
  params: ParamTree,
  x: Float64Array,
  xShape: number[],
  labels: number[],
) {
  const { leaves, rebuild } = flattenTree('test', params, isHost, 'a host array');
  const batch = xShape[0];
  const lossOf = (out: Tensor, y: Tensor) => crossEntropy(out, y);
  let names: string[] = [];
  const f = hostFunction(
    (xs, ys, ...ps) => {
      const tree = rebuild(ps) as ParamTree;
      const every = <T>(_: number, work: () => T) => work();
      const taps: readonly LayerTap[] = trainingExtras(model, lossOf, tree, xs, ys, every).taps;
      names = taps.map((t) => t.name);
      const grads = grad((p: ParamTree) => lossOf(model.apply(p, xs), ys))(tree);
      const gradOf = (p: Tensor) => {
        const gl = flattenTree('test', grads, isTensor, 'a Tensor').leaves;
        return gl[ps.findIndex((q) => q.node === p.node)];
      };
      return taps.flatMap((t) => {
        const e = kroneckerFactors(t, 'expand');
        const r = kroneckerFactors(t, 'reduce');
        const gw = gradOf(t.w);
        return [
          t.a,
          t.g,
          e.lambda,
          e.gamma,
          r.lambda,
          r.gamma,
          layerGradient(t),
          gw,
          t.b === undefined ? gw : gradOf(t.b),
        ];
      });
    },
    [
      { shape: xShape },
      { shape: [batch], dtype: 'i32' },
      ...leaves.map((l) => ({ shape: l.shape })),
    ],
  );
  const out = f(x, Float64Array.from(labels), ...leaves.map((l) => l.data));
  return names.map((name, i) => {
    const [a, g, eL, eG, rL, rG, G, gw, gb] = out.slice(9 * i, 9 * i + 9);
    return {
      name,
      a,
      g,
      expand: { lambda: eL, gamma: eG },
      reduce: { lambda: rL, gamma: rG },
      G,
      gw,
      gb,
    };
  });
}

/** [∂L/∂W | ∂L/∂b] row-major from autodiff's parameter gradients (W flattened per row). */
function withBiasColumn(gw: Float64Array, gb: Float64Array, out: number): Float64Array {
  const dIn = gw.length / out;
  const m = new Float64Array(out * (dIn + 1));
  for (let o = 0; o < out; o++) {
    m.set(gw.subarray(o * dIn, (o + 1) * dIn), o * (dIn + 1));
    m[o * (dIn + 1) + dIn] = gb[o];
  }
  return m;
}

/**
 * Compares grng's taps with the reference's, layer by layer: a exactly up to summation order, g
 * and the factors within the central differences' error, and the tap's layer gradient with
 * autodiff's.
 */
function compareTaps(
  got: ReturnType<typeof grngTaps>,
  names: readonly string[],
  reference: Inputs,
  loss: (nudge: Nudge) => number,
  batch: number,
  outs: readonly number[],
) {
  names.forEach((name, k) => {
    const tap = got[k];
    const { a, rows } = reference[name];
    const positions = rows / batch;
    // a: the same products and sums in float64, possibly in another order: |Δ| ≤ d·ε·Σ|terms|,
    // far below 1e-12 for O(1) entries and d ≤ 50.
    expect(track(`${name} a`, scaledError(tap.a, a))).toBeLessThan(1e-12);
    const g = outputGradients(loss, name, rows * outs[k], batch);
    // g by five-point differences, h = 1e-3: truncation h⁴|L⁽⁵⁾|/30 and rounding 1.5·ε|L|/h are
    // each ≲ 3e-13 per entry for O(1) losses, times B ≤ 3: ≲ 2e-12; asserted < 1e-10 (50×).
    expect(track(`${name} g`, scaledError(tap.g, g))).toBeLessThan(1e-10);
    const e = expandFactors(a, g, batch, positions);
    const r = reduceFactors(a, g, batch, positions);
    // Γ sums B·T products of g's (each within 2e-12 of the reference's, |g| ≤ ~10):
    // ≤ 2·T·10·2e-12 ≤ 1e-9 at scale 1 for T ≤ 16. Λ is exact up to ordering like a.
    expect(track('expand Λ', scaledError(tap.expand.lambda, e.lambda))).toBeLessThan(1e-12);
    expect(track('expand Γ', scaledError(tap.expand.gamma, e.gamma))).toBeLessThan(1e-9);
    expect(track('reduce Λ', scaledError(tap.reduce.lambda, r.lambda))).toBeLessThan(1e-12);
    expect(track('reduce Γ', scaledError(tap.reduce.gamma, r.gamma))).toBeLessThan(1e-9);
    // G = Σ g ãᵀ / B from the tap against autodiff's ∂L/∂[W | b]: the same float64 quantity two
    // ways, equal up to summation order (≤ rows·ε·Σ|g||a| ≪ 1e-10).
    expect(
      track('G vs autodiff', scaledError(tap.G, withBiasColumn(tap.gw, tap.gb, outs[k]))),
    ).toBeLessThan(1e-10);
    // and against the reference's per-row sum of its g's (each within 2e-12, |a| ≤ ~3): ≤ 1e-9.
    expect(
      track('G vs reference', scaledError(tap.G, sharedGradient(a, g, batch, rows))),
    ).toBeLessThan(1e-9);
  });
}

describe('taps of weight-sharing layers (§10.8)', () => {
  test('W2: attention projections over B·T tokens — expand and reduce factors equal a float64 token-by-token reference', () => {
    fc.assert(
      fc.property(
        seedArb,
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 2 }),
        (seed, batch, tokens, heads) => {
          const rng = prng(seed);
          const dim = heads * int(rng, 1, 3);
          const classes = int(rng, 2, 3);
          const model = attentionClassifier(dim, heads, classes);
          const params = attentionParams(model, seed, rng);
          const x = uniform(rng, batch * tokens * dim, -2, 2);
          const labels = Array.from({ length: batch }, () => int(rng, 0, classes - 1));
          const got = grngTaps(
            model,
            params as unknown as ParamTree,
            x,
            [batch, tokens, dim],
            labels,
          );
          expect(got.map((t) => t.name)).toEqual([
            'attention.q',
            'attention.k',
            'attention.v',
            'attention.o',
            'head',
          ]);
          const refParams = referenceParams(params, heads);
          const loss = (nudge?: Nudge) =>
            attentionForward(refParams, x, batch, tokens, labels, nudge).loss;
          const { inputs } = attentionForward(refParams, x, batch, tokens, labels);
          compareTaps(got, ['q', 'k', 'v', 'o', 'head'], inputs, loss, batch, [
            dim,
            dim,
            dim,
            dim,
            classes,
          ]);
          // Token taps are [B, T, ·]; the head's [B, ·].
          expect(got[0].a.length).toBe(batch * tokens * (dim + 1));
        },
      ),
      { numRuns: 20 },
    );
    console.log('W2 attention worst scaled errors', JSON.stringify(worst));
  });

  test('W5: a convolution’s KFC factors equal the expand factors of a dense layer over float64 im2col patches', () => {
    fc.assert(
      fc.property(seedArb, fc.integer({ min: 1, max: 2 }), (seed, batch) => {
        const rng = prng(seed);
        const geometry: ConvGeometry = {
          height: int(rng, 3, 6),
          width: int(rng, 3, 6),
          channels: int(rng, 1, 2),
          kernel: [int(rng, 1, 3), int(rng, 1, 3)],
          stride: [int(rng, 1, 2), int(rng, 1, 2)],
          padding: [int(rng, 0, 1), int(rng, 0, 1)],
        };
        const [ho, wo] = convOutput(geometry);
        fc.pre(ho >= 1 && wo >= 1);
        const outC = int(rng, 1, 3);
        const classes = 2;
        const conv = nn.conv2d(geometry.channels, outC, geometry.kernel, {
          stride: geometry.stride,
          padding: geometry.padding,
          name: 'conv',
        });
        const head = nn.dense(outC, classes, { name: 'head' });
        const model: Model<ParamTree> = {
          init: (s) => ({ conv: conv.init(s), head: head.init(s + 1) }),
          apply: (p, x) => {
            const tree = p as {
              conv: Parameters<typeof conv.apply>[0];
              head: Parameters<typeof head.apply>[0];
            };
            return head.apply(tree.head, mean(tanh(conv.apply(tree.conv, x)), [1, 2]));
          },
        };
        const params = model.init(seed) as Record<string, { w: HostArray; b: HostArray }>;
        const xShape = [batch, geometry.height, geometry.width, geometry.channels];
        const x = uniform(
          rng,
          xShape.reduce((a, d) => a * d, 1),
          -2,
          2,
        );
        const labels = Array.from({ length: batch }, () => int(rng, 0, classes - 1));
        // The convolution itself: grng's conv2d against the direct-loop reference.
        const forward = hostFunction(
          (xs, w, b) => conv.apply({ w, b }, xs),
          [{ shape: xShape }, { shape: params.conv.w.shape }, { shape: params.conv.b.shape }],
        );
        const [y] = forward(x, params.conv.w.data, params.conv.b.data);
        const convRef = denseRef(params.conv);
        // Same products summed in another order: ≤ K·ε·Σ|terms| with K ≤ 18 terms of size ≤ 2.
        expect(
          track('conv output', scaledError(y, convDirect(x, batch, geometry, convRef))),
        ).toBeLessThan(1e-13);
        const got = grngTaps(model, params as unknown as ParamTree, x, xShape, labels);
        expect(got.map((t) => t.name)).toEqual(['conv', 'head']);
        const loss = (nudge?: Nudge) =>
          convForward(convRef, denseRef(params.head), geometry, x, batch, labels, nudge).loss;
        const { inputs } = convForward(convRef, denseRef(params.head), geometry, x, batch, labels);
        compareTaps(got, ['conv', 'head'], inputs, loss, batch, [outC, classes]);
      }),
      { numRuns: 20 },
    );
    console.log('W5 conv worst scaled errors', JSON.stringify(worst));
  });

  test('W1: with T = 1, [B, 1, d] taps give the dense factors and layer gradient bitwise (float32 and float64 interpreter)', () => {
    fc.assert(
      fc.property(
        seedArb,
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 5 }),
        (seed, batch, dIn, dOut) => {
          const rng = prng(seed);
          const a = uniform(rng, batch * dIn, -3, 3);
          const g = uniform(rng, batch * dOut, -3, 3);
          for (const precision of ['f32', 'f64'] as const) {
            const f = hostFunction(
              (a2, g2, a3, g3) => {
                const w = input('w', [dOut, dIn]);
                const flat = { name: 'l', a: a2, g: g2, w };
                const shared = { name: 'l', a: a3, g: g3, w };
                return [flat, shared].flatMap((t) => {
                  const e = kroneckerFactors(t, 'expand');
                  const r = kroneckerFactors(t, 'reduce');
                  return [e.lambda, e.gamma, r.lambda, r.gamma, layerGradient(t)];
                });
              },
              [
                { shape: [batch, dIn] },
                { shape: [batch, dOut] },
                { shape: [batch, 1, dIn] },
                { shape: [batch, 1, dOut] },
              ],
              precision,
            );
            const out = f(a, g, a, g);
            for (let i = 0; i < 5; i++) expect(Array.from(out[5 + i])).toEqual(Array.from(out[i]));
          }
        },
      ),
    );
  });

  test('W3: reduce equals expand on inputs constant over positions, with g summed over them', () => {
    fc.assert(
      fc.property(
        seedArb,
        fc.integer({ min: 1, max: 4 }),
        fc.constantFrom(1, 2, 4, 8),
        fc.integer({ min: 1, max: 4 }),
        (seed, batch, positions, d) => {
          const rng = prng(seed);
          const a = uniform(rng, batch * d, -3, 3);
          const g = uniform(rng, batch * positions * d, -3, 3);
          // a repeated over positions; the T = 1 tap carries ĝ = Σ_t g.
          const repeated = Float64Array.from(
            { length: batch * positions * d },
            (_, i) => a[Math.floor(i / (positions * d)) * d + (i % d)],
          );
          const summed = new Float64Array(batch * d);
          for (let n = 0; n < batch; n++)
            for (let t = 0; t < positions; t++)
              for (let j = 0; j < d; j++) summed[n * d + j] += g[(n * positions + t) * d + j];
          const f = hostFunction(
            (a3, g3, a2, g2) => {
              const w = input('w', [d, d]);
              const r = kroneckerFactors({ name: 'l', a: a3, g: g3, w }, 'reduce');
              const e = kroneckerFactors({ name: 'l', a: a2, g: g2, w }, 'expand');
              return [r.lambda, r.gamma, e.lambda, e.gamma];
            },
            [
              { shape: [batch, positions, d] },
              { shape: [batch, positions, d] },
              { shape: [batch, d] },
              { shape: [batch, d] },
            ],
          );
          const [rL, rG, eL, eG] = f(repeated, g, a, summed);
          // T a power of two: the mean of T equal values is exact, so Λ agrees bitwise. ĝ may be
          // summed in another order than here: each entry within T·ε·Σ|g| ≤ 8·2^-52·24 ≪ 1e-14.
          expect(Array.from(rL)).toEqual(Array.from(eL));
          expect(scaledError(rG, eG)).toBeLessThan(1e-14);
        },
      ),
    );
  });
});
