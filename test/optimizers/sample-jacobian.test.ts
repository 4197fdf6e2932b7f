// R-Kalman's per-sample Jacobian rows (optimizers/sample-jacobian.ts): one backward pass through
// the dense layers' probes gives the same rows J_nᵀu_n as one vector-Jacobian product per sample,
// on MLPs, LoRA adapters over tokens (a ViT) and convolutions, for any cotangent.
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  choleskySolve,
  concat,
  constant,
  crossEntropy,
  grad,
  input,
  matmul,
  mT,
  nn,
  reshape,
  type Model,
  type Tensor,
} from '../../index.js';
import { observe } from '../../optimizers/rkalman.js';
import { flattenTree, type Tree } from '../../core/tree.js';
import { HostArray } from '../../core/host-array.js';
import { interpret } from '../../runtime/interpreter.js';
import { isTensor } from '../../dsl/tensor.js';
import { vjp } from '../../dsl/transforms.js';
import type { ParamTree } from '../../dsl/optimizer.js';
import { denseSampleRows, rowByRow } from '../../optimizers/sample-jacobian.js';
import { splitTrainable, withFrozen } from '../../runtime/frozen-params.js';
import { prng, uniform } from '../support/random.js';

const isHost = (x: unknown): x is HostArray => x instanceof HostArray;

/** `tree` with every leaf replaced by seeded values in [−1, 1] (B ≠ 0: the rows are dense). */
function randomized(tree: Tree<HostArray>, seed: number): Tree<HostArray> {
  const rng = prng(seed);
  const { leaves, rebuild } = flattenTree('test', tree, isHost, 'an array');
  return rebuild(
    leaves.map(
      (l) => new HostArray(Float64Array.from(uniform(rng, l.data.length, -1, 1)), l.shape, l.dtype),
    ),
  ) as Tree<HostArray>;
}

/** Both row sets for `model` at random parameters, batch m, and a random cotangent, in float64. */
function bothRows(
  model: Model<never>,
  params: Tree<HostArray>,
  features: number,
  m: number,
  seed: number,
  trainable?: readonly string[],
) {
  const rng = prng(seed);
  const split = splitTrainable('test', params, isHost, trainable);
  const values = new Map<string, Float64Array>();
  const symbolic = (tree: Tree<HostArray>, prefix: string) => {
    const { leaves, rebuild } = flattenTree('test', tree, isHost, 'an array');
    return rebuild(
      leaves.map((l, i) => {
        values.set(`${prefix}${i}`, Float64Array.from(uniform(rng, l.data.length, -1, 1)));
        return input(`${prefix}${i}`, l.shape);
      }),
    ) as ParamTree;
  };
  const p = symbolic(split.trainable, 'p');
  const frozen =
    split.frozen === undefined ? undefined : (symbolic(split.frozen, 'f') as Tree<Tensor>);
  const bound = withFrozen(model, frozen);
  const x = input('x', [m, features]);
  values.set('x', Float64Array.from(uniform(rng, m * features, -2, 2)));
  const output = () => bound.apply(p, x);
  const classes = output().shape[1];
  const u = input('u', [m, classes]);
  values.set('u', Float64Array.from(uniform(rng, m * classes, -1, 1)));
  const managed = flattenTree('test', p, isTensor, 'a Tensor').leaves;
  const flat = (ts: readonly Tensor[]) =>
    concat(
      ts.map((t) => reshape(t, [t.size])),
      0,
    );
  const { rebuild } = flattenTree('test', p, isTensor, 'a Tensor');
  const [, pullback] = vjp((ks: Tensor[]) => bound.apply(rebuild(ks) as ParamTree, x), managed);
  const byRow = rowByRow((c) => flat(pullback(c)[0] as Tensor[]), m)(u);
  const batched = denseSampleRows(output, managed);
  if (batched === undefined) throw new Error('expected dense layers only');
  const [want, got] = interpret([byRow.node, batched(u).node], values);
  return { want, got };
}

// Both sides sum the same products in different orders: per element, a few dozen products of
// values ≤ 2 in magnitude through two or three layers; 1e-12 of the largest row entry bounds the
// float64 difference with a wide margin (observed ~1e-16), while any wrong row, sample or scale
// differs at O(1e-2) or more.
function expectClose(got: Float64Array, want: Float64Array): void {
  expect(got.length).toBe(want.length);
  const scale = Math.max(1, ...Array.from(want, Math.abs));
  got.forEach((v, i) => expect(Math.abs(v - want[i])).toBeLessThanOrEqual(1e-12 * scale));
}

describe('per-sample Jacobian rows: one backward pass = one VJP per sample', () => {
  test('MLPs (every layer managed), random widths and batches', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 2, max: 4 }),
        fc.integer({ min: 0, max: 1000 }),
        (d, hidden, classes, seed) => {
          const model = nn.mlp([d, hidden, classes]);
          const { want, got } = bothRows(model as never, model.init(seed), d, 3, seed);
          expectClose(got, want);
        },
      ),
      { numRuns: 15 },
    );
  });

  test('LoRA adapters on a ViT (dense layers over tokens) with the head; the base frozen', () => {
    const vit = nn.vit({ image: [4, 4, 1], patch: 2, dim: 8, depth: 1, heads: 2, classes: 3 });
    const adapted = nn.lora(vit, { rank: 2, train: ['head'] });
    const { want, got } = bothRows(adapted as never, adapted.init(1), 16, 3, 7, adapted.trainable);
    expectClose(got, want);
  });

  test('a CNN: convolution kernels and biases over output pixels', () => {
    const cnn = nn.cnn({ image: [4, 4, 1], channels: [2], kernel: 3, classes: 3 });
    const { want, got } = bothRows(cnn as never, cnn.init(2), 16, 2, 3);
    expectClose(got, want);
  });

  test('a managed parameter outside every dense layer gives no batched rows', () => {
    const vit = nn.vit({ image: [4, 4, 1], patch: 2, dim: 8, depth: 1, heads: 2, classes: 3 });
    const p = vit.init(0);
    const { leaves, rebuild } = flattenTree('test', p, isHost, 'an array');
    const symbolic = rebuild(leaves.map((l, i) => input(`p${i}`, l.shape))) as ParamTree;
    const x = input('x', [2, 16]);
    const position = (symbolic as { position: Tensor }).position;
    expect(denseSampleRows(() => vit.apply(symbolic as never, x), [position])).toBeUndefined();
  });
});

describe('§8.4 KF4 on a LoRA transformer, through the batched rows', () => {
  test('adapter A: HᵀR⁻¹(y′ − p′) = −Σ_n ∇ℓ_n over the adapters and the head', () => {
    // The identity holds exactly without jitter (R = blockdiag(diag p′ − p′p′ᵀ) is positive
    // definite while every p_c > 0). Both sides in float64: the left through the batched rows,
    // observe() and a Cholesky solve of R (κ(R) ≲ 1/min p ≈ 1e2 at these logits), the right by
    // autodiff of the summed cross-entropy. Rounding ≲ κ·d·ε ≈ 1e-12: 1e-9 relative.
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1 << 20 }),
        fc.integer({ min: 1, max: 3 }),
        (seed, m) => {
          const vit = nn.vit({
            image: [4, 4, 1],
            patch: 2,
            dim: 8,
            depth: 1,
            heads: 2,
            classes: 3,
          });
          const adapted = nn.lora(vit, { rank: 1, train: ['head'] });
          const params = randomized(adapted.init(seed), seed + 1);
          const rng = prng(seed + 2);
          const split = splitTrainable('test', params, isHost, adapted.trainable);
          const values = new Map<string, Float64Array>();
          const symbolic = (tree: Tree<HostArray>, prefix: string) => {
            const { leaves, rebuild } = flattenTree('test', tree, isHost, 'an array');
            return rebuild(
              leaves.map((l, i) => {
                values.set(`${prefix}${i}`, l.data);
                return input(`${prefix}${i}`, l.shape);
              }),
            );
          };
          const p = symbolic(split.trainable, 'p') as ParamTree;
          const bound = withFrozen(
            adapted as never,
            symbolic(split.frozen as Tree<HostArray>, 'f') as Tree<Tensor>,
          );
          const x = input('x', [m, 16]);
          values.set('x', Float64Array.from(uniform(rng, m * 16, -2, 2)));
          const y = input('y', [m], 'i32');
          values.set(
            'y',
            Float64Array.from({ length: m }, (_, n) => (seed + n) % 3),
          );
          const managed = flattenTree('test', p, isTensor, 'a Tensor').leaves;
          const rows = denseSampleRows(() => bound.apply(p, x), managed);
          if (rows === undefined) throw new Error('expected dense layers only');
          const { h, e, r } = observe(
            'softmax',
            bound.apply(p, x),
            y as Tensor,
            constant(1),
            rows,
            0,
          );
          const lhs = matmul(mT(h), choleskySolve(r, reshape(e, [e.size, 1])));
          const { rebuild } = flattenTree('test', p, isTensor, 'a Tensor');
          const summed = (...ks: Tensor[]) =>
            crossEntropy(bound.apply(rebuild(ks) as ParamTree, x), y as Tensor).mul(m);
          const g = grad(
            summed,
            managed.map((_, i) => i),
          )(...managed) as Tensor[];
          const rhs = concat(
            g.map((t) => reshape(t, [t.size])),
            0,
          ).mul(-1);
          const [got, want] = interpret([reshape(lhs, [lhs.size]).node, rhs.node], values);
          const scale = Math.max(...Array.from(want, Math.abs));
          got.forEach((v, i) => expect(Math.abs(v - want[i])).toBeLessThanOrEqual(1e-9 * scale));
        },
      ),
      { numRuns: 8 },
    );
  });
});
