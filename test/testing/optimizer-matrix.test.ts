// grng/testing's optimizerMatrix: passes on AdamW and on examples/lion.ts's Lion with settings
// that converge, and fails, naming the check, on optimizers broken in the ways users break them.
import { describe, expect, test } from 'vitest';
import { lion } from '../../examples/lion.js';
import {
  adamw,
  defineOptimizer,
  mul,
  sophia,
  sub,
  zeros,
  zerosLike,
  treeMap,
  type Tensor,
} from '../../index.js';
import { optimizerMatrix } from '../../testing.js';
import { gpuDevice } from '../support/gpu.js';
import { grngRejection } from '../support/rejection.js';

const failure = grngRejection;

describe('optimizerMatrix passes working optimizers', () => {
  test('adamw (lr 0.05; lr 0.02 on Rosenbrock)', async () => {
    // Measured: quadratic ratio 6.4e-10 (default bound 1e-3), Rosenbrock 1.2e-3 after 2000 steps
    // (the decoupled decay slows the walk along the valley; bound 5e-3 as in the common matrix).
    const report = await optimizerMatrix(adamw({ lr: 0.05 }), {
      rosenbrock: { hyper: { lr: 0.02 }, steps: 2000, maxLoss: 5e-3 },
    });
    expect(report.failures).toEqual([]);
    expect(report.quadratic!.ratio).toBeLessThanOrEqual(1e-3);
    expect(report.setHyper!.traces[0]).toBe(report.setHyper!.traces[1]);
    expect(report.resume.bitIdentical).toBe(true);
  });

  test("examples/lion.ts's lion (lr 0.02; 2e-3 on Rosenbrock)", async () => {
    // Measured on the float64 interpreter: quadratic ratio 4.1e-4 (a sign step of fixed size ends
    // in an O(lr) oscillation around the minimum; the default bound 1e-3 leaves 2.5×), Rosenbrock
    // 1.8e-3 after 2000 steps (default bound 1e-2: 5.7×).
    const report = await optimizerMatrix(lion({ lr: 0.02 }), {
      rosenbrock: { hyper: { lr: 2e-3 }, steps: 2000 },
    });
    expect(report.failures).toEqual([]);
    expect(report.quadratic!.ratio).toBeLessThanOrEqual(1e-3);
    expect(report.rosenbrock!.finalLoss).toBeLessThanOrEqual(1e-2);
  });
});

/** An optimizer that never looks at the gradient: θ ← θ − η·0. */
const frozen = defineOptimizer({
  name: 'frozen',
  hyper: { lr: 0.1 },
  init: (params) => ({ m: treeMap(zerosLike, params) }),
  update: ({ params, state, hyper, map }) => ({
    params: map((p) => sub(p, mul(hyper.lr, 0)), params),
    state,
  }),
});

/** Its state grows a new leaf every step. */
const growing = defineOptimizer({
  name: 'growing',
  hyper: { lr: 0.1 },
  init: (params) => ({ m: treeMap(zerosLike, params) }) as { m: unknown; extra?: Tensor },
  update: ({ params, grads, state, hyper, map }) => ({
    params: map((p, g) => sub(p, mul(hyper.lr, g)), params, grads),
    state: { ...state, extra: zeros([]) },
  }),
});

/**
 * Gradient descent that bakes lr into the program (ctx.settings) instead of reading the runtime
 * value.
 */
const baked = defineOptimizer({
  name: 'baked',
  hyper: { lr: 0.1 },
  init: (params) => ({ m: treeMap(zerosLike, params) }),
  update: ({ params, grads, state, settings, map }) => ({
    params: map((p, g) => sub(p, mul(settings.lr, g)), params, grads),
    state,
  }),
});

describe('optimizerMatrix on WebGPU', () => {
  test('adamw: converges, and setHyper({ lr }) compiles no new program', async () => {
    const gpu = await gpuDevice();
    const report = await optimizerMatrix(adamw({ lr: 0.05 }), { device: gpu, rosenbrock: false });
    expect(report.failures).toEqual([]);
    expect(report.setHyper!.newPrograms).toBe(0);
    expect(report.resume.bitIdentical).toBe(true);
  });
});

describe('optimizerMatrix fails broken optimizers with the check that caught them', () => {
  const quick = { rosenbrock: false } as const;

  test('an update that ignores the gradient does not converge', async () => {
    const error = await failure(optimizerMatrix(frozen(), quick));
    expect(error.message).toMatch(/frozen .* failed \d check/);
    expect(error.message).toMatch(/quadratic: loss ratio 1\.000e\+0 after 200 steps/);
    const report = await optimizerMatrix(frozen(), { ...quick, throwOnFailure: false });
    expect(report.quadratic!.passed).toBe(false);
    expect(report.resume.passed).toBe(true);
  });

  test('a state that grows a leaf every step', async () => {
    const error = await failure(optimizerMatrix(growing(), quick));
    expect(error.message).toMatch(/state structure: threw: .*updated state/);
  });

  test('lr read from ctx.settings: setHyper changes nothing', async () => {
    const report = await optimizerMatrix(baked(), { ...quick, throwOnFailure: false });
    expect(report.quadratic!.passed).toBe(true);
    expect(report.setHyper!.passed).toBe(false);
    expect(report.setHyper!.detail).toMatch(/ignores ctx\.hyper\.lr/);
  });

  test('curvature optimizers and bad options are GrngErrors up front', async () => {
    expect((await failure(optimizerMatrix(sophia()))).message).toMatch(/gradient-only/);
    expect(
      (await failure(optimizerMatrix(adamw(), { setHyper: { name: 'nesterov' } }))).message,
    ).toMatch(/setHyper\.name/);
    await failure(optimizerMatrix(adamw(), { steps: 1 }));
  });
});
