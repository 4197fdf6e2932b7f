// The plain-JS CPU reference points must compute what they claim, or their timings mean nothing:
// the MLP gradient against central finite differences (float64), AdamW against the formula
// written out per element, and the MLP step actually training.
import { describe, expect, test } from 'vitest';
import {
  mlpLossAndGradient,
  mlpWorkspace,
  plainAdamW,
  plainMlpStep,
} from '../../bench/peers/plain-js.js';

const SIZES = [5, 4, 3, 3];
const BATCH = 4;
const LABELS = Int32Array.from({ length: BATCH }, (_, i) => i % 3);
// Deterministic float64 data; biases non-zero so their gradients are exercised through the ReLUs.
const fill = (n: number, seed: number) =>
  Float64Array.from({ length: n }, (_, i) => Math.sin(i * 1.7 + seed) * 0.8);
const params = () =>
  SIZES.slice(1).flatMap((out, l) => [
    fill(SIZES[l] * out, 2 * l),
    fill(out, 2 * l + 1).map((b) => b * 0.3),
  ]);
const X = fill(BATCH * SIZES[0], 9);

describe('mlpLossAndGradient', () => {
  test('loss is ln(classes) when every parameter is zero', () => {
    const zero = params().map((p) => p.map(() => 0));
    expect(mlpLossAndGradient(zero, X, LABELS, SIZES)).toBeCloseTo(Math.log(3), 12);
  });

  test('gradient matches central finite differences in float64', () => {
    const p = params();
    const work = mlpWorkspace(p, SIZES, BATCH);
    mlpLossAndGradient(p, X, LABELS, SIZES, work);
    // Central differences err by h²/6·|f'''| (truncation) plus ~ε·|f|/h (rounding). The loss is
    // O(1) with O(1) derivatives at these O(1) weights (and piecewise smooth: no ReLU input lies
    // within h of 0 here), so h = 1e-5 gives ≈ 1e-10 + 1e-11 — far under 1e-7, while a wrong
    // term (a missing 1/batch, a skipped ReLU mask, a transposed product) errs by ≥ 1e-2.
    const h = 1e-5;
    let checked = 0;
    p.forEach((tensor, t) => {
      for (let i = 0; i < tensor.length; i++) {
        const orig = tensor[i];
        tensor[i] = orig + h;
        const up = mlpLossAndGradient(p, X, LABELS, SIZES);
        tensor[i] = orig - h;
        const down = mlpLossAndGradient(p, X, LABELS, SIZES);
        tensor[i] = orig;
        expect(
          Math.abs(work.grads[t][i] - (up - down) / (2 * h)),
          `tensor ${t} element ${i}`,
        ).toBeLessThan(1e-7);
        checked++;
      }
    });
    expect(checked).toBe(5 * 4 + 4 + 4 * 3 + 3 + 3 * 3 + 3);
    // Non-trivial: some gradient of every tensor is well away from zero.
    for (const g of work.grads) expect(Math.max(...g.map(Math.abs))).toBeGreaterThan(1e-3);
  });
});

describe('plainAdamW', () => {
  test('one step equals the AdamW formula per element', async () => {
    // A large lr and decay so each term moves θ by far more than float32 rounding.
    const hyper = { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, step: 3 };
    const adam = plainAdamW([7, 5], hyper);
    const before = adam.tensors.map((t) => ({
      theta: Float64Array.from(t.theta),
      m: Float64Array.from(t.m),
      v: Float64Array.from(t.v),
      g: Float64Array.from(t.g),
    }));
    await adam.run();
    // How far θ lands from formulas missing one term: the tolerance below must be much smaller.
    let [offNoDecay, offNoCorrection] = [0, 0];
    adam.tensors.forEach((after, k) => {
      const b = before[k];
      for (let i = 0; i < b.theta.length; i++) {
        const m = 0.9 * b.m[i] + 0.1 * b.g[i];
        const v = 0.999 * b.v[i] + 0.001 * b.g[i] ** 2;
        const mHat = m / (1 - 0.9 ** 3);
        const vHat = v / (1 - 0.999 ** 3);
        const theta = b.theta[i] - 1e-2 * (mHat / (Math.sqrt(vHat) + 1e-8) + 0.1 * b.theta[i]);
        // Each element is computed in float64 from the same float32 inputs and rounded once when
        // stored: ≤ ½ ulp, which is ≤ 2⁻²⁵ for these values (|x| < 1).
        expect(Math.abs(after.m[i] - m)).toBeLessThanOrEqual(2 ** -25);
        expect(Math.abs(after.v[i] - v)).toBeLessThanOrEqual(2 ** -25);
        expect(Math.abs(after.theta[i] - theta)).toBeLessThanOrEqual(2 ** -25);
        expect(Math.max(Math.abs(m), Math.abs(v), Math.abs(theta))).toBeLessThan(1);
        offNoDecay = Math.max(
          offNoDecay,
          Math.abs(after.theta[i] - (b.theta[i] - 1e-2 * (mHat / (Math.sqrt(vHat) + 1e-8)))),
        );
        offNoCorrection = Math.max(
          offNoCorrection,
          Math.abs(
            after.theta[i] - (b.theta[i] - 1e-2 * (m / (Math.sqrt(v) + 1e-8) + 0.1 * b.theta[i])),
          ),
        );
      }
    });
    expect(offNoDecay).toBeGreaterThan(1e-5);
    expect(offNoCorrection).toBeGreaterThan(1e-5);
  });
});

describe('plainMlpStep', () => {
  test('training steps lower the loss from ln(classes)', async () => {
    const step = plainMlpStep({ sizes: [8, 16, 4], batch: 8 });
    await step.run();
    const first = step.loss();
    // Weights of std 0.05, inputs in [0, 1): hidden pre-activations have std ≈ √(8/3)·0.05 ≈ 0.08,
    // logits std ≈ √(16·0.0034)·0.05 ≈ 0.012, so each sample's loss is ln 4 ± ~0.02 and the batch
    // mean within 0.05 (over 4 standard deviations); a summed, not averaged, loss reads 8·ln 4.
    expect(Math.abs(first - Math.log(4))).toBeLessThan(0.05);
    for (let i = 0; i < 200; i++) await step.run();
    expect(step.loss()).toBeLessThan(first - 0.1);
  });
});
