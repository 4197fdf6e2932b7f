// A new optimizer in a few lines of DSL: Lion (Chen et al. 2023, "Symbolic Discovery of
// Optimization Algorithms"). In your project, import from 'grng' instead of '../index.js'.
import { add, defineOptimizer, mul, outside, sign, sub, treeMap, zerosLike } from '../index.js';

export const lion = defineOptimizer({
  name: 'lion',
  hyper: { lr: 1e-4, beta1: 0.9, beta2: 0.99, weightDecay: 0 },
  validate: (h) =>
    outside('lr', h.lr, 0, Infinity) ??
    outside('beta1', h.beta1, 0, 1, true) ??
    outside('beta2', h.beta2, 0, 1, true) ??
    outside('weightDecay', h.weightDecay, 0, Infinity),
  init: (params) => ({ m: treeMap(zerosLike, params) }),
  update: ({ params, grads, state, hyper: { lr, beta1, beta2, weightDecay }, map }) => ({
    // θ ← θ − η (sign(β₁ m + (1 − β₁) g) + λ θ); m ← β₂ m + (1 − β₂) g.
    params: map(
      (p, g, m) =>
        sub(p, mul(lr, add(sign(add(mul(beta1, m), mul(sub(1, beta1), g))), mul(weightDecay, p)))),
      params,
      grads,
      state.m,
    ),
    state: { m: map((g, m) => add(mul(beta2, m), mul(sub(1, beta2), g)), grads, state.m) },
  }),
});

// Run it: train a small MLP on random data with the compiled step (npx tsx examples/lion.ts).
if (import.meta.url === `file://${process.argv[1]}`) {
  const { array, compileTrainStep, createDevice, crossEntropy, nn } = await import('../index.js');
  const model = nn.mlp([8, 32, 4]);
  const x = array(
    Float64Array.from({ length: 64 * 8 }, (_, i) => Math.sin(i * 1.7)),
    [64, 8],
  );
  const y = array(
    Int32Array.from({ length: 64 }, (_, n) => n % 4),
    [64],
    'i32',
  );
  const train = await compileTrainStep({
    model,
    loss: crossEntropy,
    optimizer: lion({ lr: 3e-3 }),
    params: model.init(0),
    device: await createDevice(),
  });
  for (let step = 1; step <= 50; step++) {
    const { loss } = await train.run({ x, y });
    if (step % 10 === 0) console.log(`step ${step}: loss ${loss.toFixed(4)}`);
  }
}
