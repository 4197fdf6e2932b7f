// R-Kalman's choice of the managed parameters (docs/algorithms.md §5: 'all', 'head' = the last
// dense layer, or comma-separated path prefixes) and the step of the others (fallback 'sgd':
// momentum SGD; 'none': frozen), on the float64 interpreter through rkalman itself. The Kalman
// update of the managed parameters is checked against the float64 reference in rkalman.test.ts;
// here the references are exact identities: the same selection named two ways gives bitwise the
// same run, and on the first step (same parameters, same gradient) an unmanaged parameter moves
// exactly as sgd({ lr, momentum }) moves it (the same float64 operations: v₁ = μ·0 + g = g, θ₁ = θ₀
// − ηv₁). Also the guards: a selection that matches nothing, a covariance of the wrong shape, and
// adapters A/B on outputs that are not class logits.
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  array,
  compileTrainStep,
  constant,
  createDevice,
  crossEntropy,
  defineOptimizer,
  GrngError,
  mul,
  nn,
  rkalman,
  sgd,
  zeros,
  type DeviceArray,
  type Model,
  type Tensor,
} from '../../index.js';
import { observe } from '../../optimizers/rkalman.js';
import { flattenTree } from '../../core/tree.js';
import type { HostArray } from '../../core/host-array.js';
import { isArrayLeaf } from '../../runtime/jit.js';
import { int, prng, seedArb, uniform } from '../support/random.js';

const cpu = await createDevice({ kind: 'cpu' });

const mlpCase = fc.record({
  seed: seedArb,
  m: fc.integer({ min: 1, max: 4 }),
  dIn: fc.integer({ min: 1, max: 3 }),
  hidden: fc.integer({ min: 1, max: 3 }),
  classes: fc.integer({ min: 2, max: 3 }),
  bias: fc.boolean(),
  covariance: fc.constantFrom('diagonal' as const, 'full' as const),
});
type MlpCase = typeof mlpCase extends fc.Arbitrary<infer T> ? T : never;

const HYPER = { lr: 0.1, momentum: 0.5, beta: 0.9, rho: 0.01, sigma0: 0.5 };

/** Leaves of a tree of device arrays, in flattenTree order, read back. */
async function leaves(tree: unknown): Promise<number[][]> {
  const { leaves: ls } = flattenTree('test', tree, isArrayLeaf, 'an array');
  return Promise.all(ls.map(async (a) => Array.from(await (a as DeviceArray).read())));
}

/** `steps` steps (a batch each) of `optimizer` on the case's MLP: params, covariance after. */
async function run(c: MlpCase, optimizer: unknown, steps = 3) {
  const model = nn.mlp([c.dIn, c.hidden, c.classes], { activation: 'tanh', bias: c.bias });
  const train = await compileTrainStep({
    model,
    loss: crossEntropy,
    optimizer: optimizer as never,
    params: model.init(c.seed),
    device: cpu,
  });
  const rng = prng(c.seed + 1);
  for (let t = 0; t < steps; t++) {
    await train.run({
      x: array(uniform(rng, c.m * c.dIn, -2, 2), [c.m, c.dIn]),
      y: array(
        Int32Array.from({ length: c.m }, () => int(rng, 0, c.classes - 1)),
        [c.m],
        'i32',
      ),
    });
  }
  const state = (await train.state()) as { covariance?: DeviceArray };
  return {
    params: await leaves(await train.params()),
    covariance: state.covariance === undefined ? [] : Array.from(await state.covariance.read()),
    initial: flattenTree(
      'test',
      model.init(c.seed),
      (v): v is HostArray => typeof v === 'object' && v !== null && 'data' in v,
      'a host array',
    ).leaves.map((h) => Array.from(h.data)),
  };
}

/** Leaf positions in flattenTree order: layers.0.b, .0.w, .1.b, .1.w (no b without bias). */
const positions = (bias: boolean) =>
  bias ? { w0: 1, b0: 0, w1: 3, b1: 2 } : { w0: 0, b0: -1, w1: 1, b1: -1 };

describe('the managed parameters', () => {
  test(
    "'head' is the last dense layer: the same run as the prefix " +
      "'layers.1'; the first layer follows sgd({ lr, momentum }) exactly " +
      "('sgd') or stays ('none')",
    async () => {
      await fc.assert(
        fc.asyncProperty(
          mlpCase,
          fc.constantFrom('sgd' as const, 'none' as const),
          async (c, fb) => {
            const settings = { ...HYPER, covariance: c.covariance, fallback: fb };
            const head = await run(c, rkalman({ ...settings, params: 'head' }));
            const byPath = await run(c, rkalman({ ...settings, params: 'layers.1' }));
            const once = await run(c, rkalman({ ...settings, params: 'head' }), 1);
            const plain = await run(c, sgd({ lr: HYPER.lr, momentum: HYPER.momentum }), 1);
            expect(head.params).toEqual(byPath.params);
            expect(head.covariance).toEqual(byPath.covariance);
            const at = positions(c.bias);
            const n1 = c.classes * c.hidden + (c.bias ? c.classes : 0);
            expect(head.covariance).toHaveLength(c.covariance === 'full' ? n1 * n1 : n1);
            for (const k of [at.w0, at.b0].filter((k) => k >= 0)) {
              expect(once.params[k], `layer 0 leaf ${k}`).toEqual(
                fb === 'sgd' ? plain.params[k] : once.initial[k],
              );
            }
            // The managed layer moved by K·e (not by the fallback's step).
            expect(once.params[at.w1]).not.toEqual(plain.params[at.w1]);
            expect(once.params[at.w1]).not.toEqual(once.initial[at.w1]);
          },
        ),
        { numRuns: 12 },
      );
    },
  );

  test(
    "path prefixes: 'layers' is 'all'; 'layers.0.w, layers.1.b' (spaces " +
      'around the comma) manages exactly those two',
    async () => {
      await fc.assert(
        fc.asyncProperty(mlpCase, async (c) => {
          const settings = { ...HYPER, covariance: c.covariance, fallback: 'sgd' };
          const all = await run(c, rkalman({ ...settings, params: 'all' }));
          const prefix = await run(c, rkalman({ ...settings, params: 'layers' }));
          expect(prefix.params).toEqual(all.params);
          expect(prefix.covariance).toEqual(all.covariance);

          const at = positions(c.bias);
          const selection = c.bias ? 'layers.0.w , layers.1.b' : 'layers.0.w ,layers.1.w';
          const managed = c.bias ? [at.w0, at.b1] : [at.w0, at.w1];
          const some = await run(c, rkalman({ ...settings, params: selection }), 1);
          const plain = await run(c, sgd({ lr: HYPER.lr, momentum: HYPER.momentum }), 1);
          const n = managed.reduce((s, k) => s + some.initial[k].length, 0);
          expect(some.covariance).toHaveLength(c.covariance === 'full' ? n * n : n);
          some.params.forEach((p, k) => {
            if (managed.includes(k)) expect(p, `managed leaf ${k}`).not.toEqual(plain.params[k]);
            else expect(p, `unmanaged leaf ${k}`).toEqual(plain.params[k]);
          });
        }),
        { numRuns: 10 },
      );
    },
  );

  test(
    "a selection matching no parameter path is a GrngError ('layer' is a " +
      'prefix of the text, not of a path component)',
    async () => {
      const c = { seed: 1, m: 2, dIn: 2, hidden: 2, classes: 3, bias: true } as MlpCase;
      for (const params of ['layer', 'layers.2', 'w'])
        await expect(run(c, rkalman({ params }))).rejects.toThrow(/matches no parameter/);
    },
  );

  test(
    "'head' on a model without dense layers is a GrngError (name the " + 'parameters by path)',
    async () => {
      // z = x ⊙ w: no nn.dense, so no layer taps.
      const model = {
        init: () => ({ w: array([0.5, -1], [2]) }),
        apply: (p: { w: Tensor }, x: Tensor) => mul(x, p.w),
      } as unknown as Model<never>;
      const firstStep = async () => {
        const train = await compileTrainStep({
          model,
          loss: crossEntropy,
          optimizer: rkalman({ params: 'head' }),
          params: model.init(0),
          device: cpu,
        });
        await train.run({
          x: array([1, 2, 3, 4], [2, 2]),
          y: array(Int32Array.of(0, 1), [2], 'i32'),
        });
      };
      await expect(firstStep()).rejects.toThrow(/'head' needs a model with dense layers/);
    },
  );
});

describe('guards', () => {
  test(
    "a covariance of the wrong shape handed to rkalman's update is a " +
      'GrngError (diagonal: [n + 1]; full: [n] or [n, n + 1])',
    async () => {
      for (const [covariance, wrong] of [
        ['diagonal', (n: number) => [n + 1]],
        ['full', (n: number) => [n]],
        ['full', (n: number) => [n, n + 1]],
      ] as const) {
        const inner = rkalman({ params: 'all', covariance });
        // A wrapper whose own state (checked by compileTrainStep) carries the wrong covariance.
        const wrapped = defineOptimizer({
          name: 'wrapped',
          hyper: inner.hyper,
          init: (params, h, layers) => {
            const s = inner.definition.init(params, h as never, layers) as {
              covariance: Tensor;
            };
            const n = s.covariance.shape[0];
            return { ...s, covariance: zeros(wrong(n)) as Tensor };
          },
          update: (ctx) => inner.definition.update(ctx as never) as never,
        });
        const c = { seed: 2, m: 2, dIn: 2, hidden: 2, classes: 3, bias: true } as MlpCase;
        await expect(run(c, wrapped())).rejects.toThrow(/the covariance in the state is/);
      }
    },
  );

  test(
    "adapters 'softmax' and 'scalar' need class logits [B, C]: rank-1 " + 'outputs are a GrngError',
    () => {
      for (const adapter of ['softmax', 'scalar']) {
        expect(() =>
          observe(
            adapter,
            constant(Float64Array.of(0.5, -0.5), [2]),
            constant(Int32Array.of(0, 1), [2]) as Tensor,
            constant(Float64Array.of(1), []) as Tensor,
            (cotangent) => cotangent,
          ),
        ).toThrow(GrngError);
        expect(() =>
          observe(
            adapter,
            constant(Float64Array.of(0.5, -0.5), [2]),
            constant(Int32Array.of(0, 1), [2]) as Tensor,
            constant(Float64Array.of(1), []) as Tensor,
            (cotangent) => cotangent,
          ),
        ).toThrow(/needs class logits \[B, C\], got \[2\]/);
      }
    },
  );
});
