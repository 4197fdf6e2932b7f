// The matrix every optimizer must pass, now and later (as optax's _common_test): convergence on a
// convex quadratic and on Rosenbrock, stable state structure, hyperparameter changes between
// steps without recompiling, resuming from a checkpoint, and GrngErrors for bad input. Most of it
// runs on the float64 interpreter; one convergence + no-recompile case per optimizer on WebGPU.
//
// To add an optimizer: one entry in MATRIX (its factory, settings that converge on the quadratic,
// a float64 reference from reference.ts, a Rosenbrock lr and step budget, invalid settings).
import { describe, expect, test } from 'vitest';
import {
  adam,
  adamw,
  array,
  compileOptimizer,
  createDevice,
  sgd,
  type Device,
  type DeviceArray,
  type HostArray,
  type Optimizer,
} from '../../index.js';
import { gpuDevice } from '../support/gpu.js';
import { prng } from '../support/random.js';
import {
  expectGrngError,
  f32,
  hostTree,
  leavesOf,
  randomTensors,
  readTree,
  structureOf,
  worstScaled,
} from './harness.js';
import {
  adamReference,
  adamwReference,
  runReference,
  sgdReference,
  type ReferenceOptimizer,
  type Tensors,
} from './reference.js';

// `any`: each optimizer has its own hyperparameter and state types.
type AnyOptimizer = Optimizer<any, any>;

interface Entry {
  readonly name: string;
  readonly make: (settings?: any) => AnyOptimizer;
  /** Settings for the quadratic and the other checks (lr 0.05 on the quadratic below). */
  readonly settings: Record<string, number | boolean>;
  readonly reference: ReferenceOptimizer<any, any>;
  /**
   * Rosenbrock from (−1.5, 2): settings changed for it and the step budget (see
   * ROSENBROCK_MAX_LOSS).
   */
  readonly rosenbrock: { readonly settings: Record<string, number>; readonly steps: number };
  /**
   * Settings out of range for this optimizer, each a GrngError (negative lr, unknown names and
   * wrong types are checked for all).
   */
  readonly invalid: readonly Record<string, unknown>[];
}

const MATRIX: readonly Entry[] = [
  {
    name: 'sgd',
    make: sgd,
    settings: { lr: 0.05, momentum: 0.9 },
    reference: sgdReference,
    rosenbrock: { settings: { lr: 2e-3 }, steps: 1500 },
    invalid: [
      { momentum: -0.5 },
      { dampening: 1.5 },
      { dampening: -0.1 },
      { nesterov: true, momentum: 0 },
      { nesterov: true, momentum: 0.9, dampening: 0.1 },
      { weightDecay: -1e-4 },
    ],
  },
  {
    name: 'adam',
    make: adam,
    settings: { lr: 0.05 },
    reference: adamReference,
    rosenbrock: { settings: {}, steps: 1500 },
    invalid: [
      { beta1: 1 },
      { beta1: -0.1 },
      { beta2: 1 },
      { beta2: 1.5 },
      { eps: -1e-8 },
      { weightDecay: -0.01 },
    ],
  },
  {
    name: 'adamw',
    make: adamw,
    settings: { lr: 0.05 },
    reference: adamwReference,
    rosenbrock: { settings: { lr: 0.02 }, steps: 2000 },
    invalid: [{ beta1: 1 }, { beta1: -0.1 }, { beta2: 1 }, { eps: -1e-8 }, { weightDecay: -0.01 }],
  },
];

// ---- problems (gradients in plain JS, fed to step()) ----

/** ½ Σ dᵢxᵢ² over two tensors, curvatures 1…10: condition number 10, minimum 0 at x = 0. */
const QUAD_SHAPES = [[4], [2, 3]];
const QUAD_D = [Float64Array.of(1, 2, 3, 4), Float64Array.of(5, 6, 7, 8, 9, 10)];
const QUAD_X0 = f32([
  Float64Array.of(1, -1, 0.5, -0.5),
  Float64Array.of(0.3, -0.7, 1, 0.2, -0.4, 0.9),
]);
const quadLoss = (x: Tensors) =>
  x.reduce((acc, xs, k) => acc + xs.reduce((a, v, i) => a + 0.5 * QUAD_D[k][i] * v * v, 0), 0);
const quadGrad = (x: Tensors) => x.map((xs, k) => xs.map((v, i) => QUAD_D[k][i] * v));
const QUAD_STEPS = 200;
/**
 * All three reach ≈ 4.7e-9 after 200 steps from 12.5 (measured, float64 and WebGPU alike; SGD's
 * heavy ball contracts by ≈ √μ ≈ 0.95 a step, Adam at lr 0.05 as fast here): asserting a 1e7
 * reduction (loss ≤ 1.25e-6) leaves a margin of ~250×.
 */
const QUAD_MAX_RATIO = 1e-7;

/** (1 − x)² + 100(y − x²)², minimum 0 at (1, 1); 12.5 at the start (−1.5, 2). */
const ROSEN_X0 = [Float64Array.of(-1.5, 2)];
const rosenLoss = ([[x, y]]: Tensors) => (1 - x) ** 2 + 100 * (y - x * x) ** 2;
const rosenGrad = ([[x, y]]: Tensors) => [
  Float64Array.of(-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)),
];
/**
 * Measured at the budgets in MATRIX: SGD (lr 2e-3, μ 0.9) 7e-14, Adam (lr 0.05) 1.3e-7, AdamW
 * (lr 0.02, λ 0.01: its decoupled decay slows the walk along the valley) 1.2e-3 at (0.965, 0.932).
 * Asserted: loss ≤ 5e-3 (a 2500× reduction) and every coordinate within 0.1 of the minimum.
 */
const ROSENBROCK_MAX_LOSS = 5e-3;

/**
 * Runs `steps` steps with gradients computed from the current parameters; returns the final
 * parameters.
 */
async function descend(
  optimizer: AnyOptimizer,
  device: Device,
  x0: Tensors,
  shapes: number[][],
  gradient: (x: Tensors) => Tensors,
  steps: number,
): Promise<Float64Array[]> {
  const opt = await compileOptimizer(optimizer, hostTree(x0, shapes), { device });
  for (let t = 0; t < steps; t++)
    await opt.step(hostTree(gradient(await readTree(opt.params())), shapes));
  return readTree(opt.params());
}

/**
 * Replaces one leaf (by index in flattening order) of a tree of arrays, or drops it (`undefined`).
 */
function editLeaf(
  tree: unknown,
  index: number,
  replace: (a: DeviceArray) => HostArray | undefined,
): unknown {
  let i = 0;
  const walk = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(walk).filter((x) => x !== undefined);
    if (node !== null && typeof node === 'object' && !('read' in node)) {
      return Object.fromEntries(
        Object.keys(node)
          .sort()
          .map((k) => [k, walk((node as Record<string, unknown>)[k])])
          .filter(([, v]) => v !== undefined),
      );
    }
    return i++ === index ? replace(node as DeviceArray) : node;
  };
  return walk(tree);
}

/**
 * Two random parameter tensors (a vector and a matrix), a rank-0 one, and gradients for `steps`
 * steps.
 */
const SHAPES = [[3], [2, 3], []];
function randomProblem(seed: number, steps: number) {
  const rng = prng(seed);
  return {
    theta0: randomTensors(rng, SHAPES),
    grads: Array.from({ length: steps }, () => randomTensors(rng, SHAPES)),
  };
}

/**
 * float64 interpreter vs float64 reference: same formulas, ≤ 1e3 amplification by 1 − βᵗ over a few
 * steps (see baselines.test.ts).
 */
const F64_TOL = 1e-12;

describe.each(MATRIX.map((e) => [e.name, e] as const))(
  '%s: common optimizer matrix',
  (_, entry) => {
    const cpu = createDevice({ kind: 'cpu' });
    const optimizer = entry.make(entry.settings);

    test('converges on a convex quadratic (condition number 10)', async () => {
      const x = await descend(optimizer, await cpu, QUAD_X0, QUAD_SHAPES, quadGrad, QUAD_STEPS);
      expect(quadLoss(x)).toBeLessThanOrEqual(QUAD_MAX_RATIO * quadLoss(QUAD_X0));
    });

    test('converges on the 2-D Rosenbrock function', async () => {
      const x = await descend(
        optimizer.with(entry.rosenbrock.settings),
        await cpu,
        ROSEN_X0,
        [[2]],
        rosenGrad,
        entry.rosenbrock.steps,
      );
      expect(rosenLoss(x)).toBeLessThanOrEqual(ROSENBROCK_MAX_LOSS);
      x[0].forEach((v) => expect(Math.abs(v - 1)).toBeLessThanOrEqual(0.1));
    });

    test(
      'state keeps its tree structure, shapes and dtypes across steps; ' + 'params keep theirs',
      async () => {
        const { theta0, grads } = randomProblem(1, 4);
        const params = hostTree(theta0, SHAPES);
        const opt = await compileOptimizer(optimizer, params, { device: await cpu });
        const state0 = structureOf(opt.state());
        expect(state0).not.toBe('{}');
        for (const g of grads) {
          await opt.step(hostTree(g, SHAPES));
          expect(structureOf(opt.state())).toBe(state0);
          expect(structureOf(opt.params())).toBe(structureOf(params));
        }
        expect(opt.steps).toBe(grads.length);
      },
    );

    test(
      'setHyper({ lr }) between steps is used by the next update (vs the ' +
        'reference); a rejected change leaves lr as it was',
      async () => {
        const { theta0, grads } = randomProblem(2, 6);
        const [lr1, lr2] = [entry.settings.lr as number, (entry.settings.lr as number) / 4];
        const opt = await compileOptimizer(optimizer, hostTree(theta0, SHAPES), {
          device: await cpu,
        });
        const got: Float64Array[][] = [];
        for (let t = 1; t <= 6; t++) {
          if (t === 4) {
            opt.setHyper({ lr: lr2 });
            await expectGrngError(() => opt.setHyper({ lr: -1 }), /lr/);
          }
          await opt.step(hostTree(grads[t - 1], SHAPES));
          got.push(await readTree(opt.params()));
        }
        const hyper = (lr: number) => ({ ...optimizer.hyper, lr });
        const want = runReference(
          entry.reference,
          theta0,
          6,
          (_, t) => grads[t - 1],
          (t) => hyper(t < 4 ? lr1 : lr2),
        );
        const unchanged = runReference(
          entry.reference,
          theta0,
          6,
          (_, t) => grads[t - 1],
          () => hyper(lr1),
        );
        got.forEach((params, t) => {
          // Same formulas in float64 (see F64_TOL).
          expect(worstScaled(params, want.trajectory[t]), `step ${t + 1}`).toBeLessThanOrEqual(
            F64_TOL,
          );
        });
        // The check has power: keeping lr₁ would have ended > 1e-3 away.
        expect(worstScaled(unchanged.params, want.params)).toBeGreaterThan(1e-3);
      },
    );

    test('resuming from params(), state() and { step } continues the same trajectory', async () => {
      const { theta0, grads } = randomProblem(3, 6);
      const device = await cpu;
      const whole = await compileOptimizer(optimizer, hostTree(theta0, SHAPES), { device });
      for (const g of grads) await whole.step(hostTree(g, SHAPES));
      const first = await compileOptimizer(optimizer, hostTree(theta0, SHAPES), { device });
      for (const g of grads.slice(0, 3)) await first.step(hostTree(g, SHAPES));
      // A checkpoint on the host, then a fresh compiled optimizer from it.
      const toHost = async (tree: unknown): Promise<unknown> => {
        if (Array.isArray(tree)) return Promise.all(tree.map(toHost));
        if (tree !== null && typeof tree === 'object' && 'read' in tree) {
          const a = tree as DeviceArray;
          return array(await a.read(), a.shape, a.dtype);
        }
        return Object.fromEntries(
          await Promise.all(
            Object.entries(tree as object).map(async ([k, v]) => [k, await toHost(v)]),
          ),
        );
      };
      const resumed = await compileOptimizer(optimizer, (await toHost(first.params())) as never, {
        device,
        state: (await toHost(first.state())) as never,
        step: 3,
      });
      for (const g of grads.slice(3)) await resumed.step(hostTree(g, SHAPES));
      expect(resumed.steps).toBe(6);
      // The same operations on the same float64 numbers: identical to the last bit.
      expect((await readTree(resumed.params())).map((x) => Array.from(x))).toEqual(
        (await readTree(whole.params())).map((x) => Array.from(x)),
      );
    });

    test(
      'bad hyperparameters are GrngErrors: unknown name, wrong type, ' +
        'negative or NaN lr, out-of-range settings',
      async () => {
        const bad: Record<string, unknown>[] = [
          { lrr: 0.1 },
          { lr: '1' },
          { lr: -0.01 },
          { lr: Number.NaN },
          { lr: Infinity },
          ...entry.invalid,
        ];
        const opt = await compileOptimizer(optimizer, hostTree(QUAD_X0, QUAD_SHAPES), {
          device: await cpu,
        });
        for (const settings of bad) {
          await expectGrngError(() => entry.make(settings), new RegExp(entry.name));
          await expectGrngError(() => optimizer.with(settings));
          await expectGrngError(() => opt.setHyper(settings));
        }
        expect(() => entry.make(entry.settings)).not.toThrow();
      },
    );

    test('a state that does not match the parameters is a GrngError', async () => {
      const device = await cpu;
      const { theta0 } = randomProblem(4, 0);
      const params = hostTree(theta0, SHAPES);
      const good = (await compileOptimizer(optimizer, params, { device })).state();
      const leaves = leavesOf(good).length;
      const other = (
        await compileOptimizer(
          optimizer,
          hostTree(randomTensors(prng(5), [[4], [2, 3], []]), [[4], [2, 3], []]),
          { device },
        )
      ).state();
      const wrong: [string, unknown][] = [
        ['the state for other parameters', other],
        [
          'a leaf of another shape',
          editLeaf(good, 0, (a) =>
            array(new Float64Array(a.shape.reduce((x, y) => x * y, 1) + 1), [
              a.shape.reduce((x, y) => x * y, 1) + 1,
            ]),
          ),
        ],
        [
          'a leaf of another dtype',
          editLeaf(good, leaves - 1, (a) =>
            array(new Int32Array(a.shape.reduce((x, y) => x * y, 1)), a.shape, 'i32'),
          ),
        ],
        ['a missing leaf', editLeaf(good, leaves - 1, () => undefined)],
        ['an empty state', {}],
        ['a leaf that is not an array', editLeaf(good, 0, () => 'zeros' as never)],
      ];
      for (const [what, state] of wrong) {
        await expectGrngError(
          () => compileOptimizer(optimizer, params, { device, state: state as never }),
          /compileOptimizer/,
        ).catch((e: unknown) => {
          throw new Error(`${what}: ${String(e)}`);
        });
      }
      // The state it makes itself is accepted.
      await compileOptimizer(optimizer, params, { device, state: good as never });
    });

    test(
      'gradients that do not match the parameters are GrngErrors and leave ' +
        'the optimizer as it was',
      async () => {
        const device = await cpu;
        const { theta0, grads } = randomProblem(6, 1);
        const opt = await compileOptimizer(optimizer, hostTree(theta0, SHAPES), { device });
        const g = grads[0];
        const wrong: [string, unknown][] = [
          [
            'a longer vector',
            {
              first: array(new Float64Array(4), [4]),
              rest: [array(g[1], [2, 3]), array(g[2], [])],
            },
          ],
          ['a transposed matrix', hostTree(g, [[3], [3, 2], []])],
          ['a rank-1 scalar', hostTree(g, [[3], [2, 3], [1]])],
          ['a missing leaf', { first: array(g[0], [3]), rest: [array(g[1], [2, 3])] }],
          ['an extra key', { ...hostTree(g, SHAPES), extra: array([1]) }],
          [
            'an i32 gradient',
            { first: array(Int32Array.of(1, 2, 3)), rest: [array(g[1], [2, 3]), array(g[2], [])] },
          ],
        ];
        for (const [what, grad] of wrong) {
          await expectGrngError(() => opt.step(grad as never), /gradients/).catch((e: unknown) => {
            throw new Error(`${what}: ${String(e)}`);
          });
        }
        expect(opt.steps).toBe(0);
        // Nothing was consumed: a good step still gives the reference's first step.
        await opt.step(hostTree(g, SHAPES));
        const want = runReference(
          entry.reference,
          theta0,
          1,
          () => g,
          () => optimizer.hyper,
        );
        expect(worstScaled(await readTree(opt.params()), want.params)).toBeLessThanOrEqual(F64_TOL);
      },
    );

    test(
      'on WebGPU: converges on the quadratic; setHyper({ lr }) takes effect ' +
        'and compiles nothing new',
      async () => {
        const gpu = await gpuDevice();
        const [lr1, lr2] = [entry.settings.lr as number, (entry.settings.lr as number) / 2];
        const change = 4;
        const run = async (setHyper: boolean) => {
          const opt = await compileOptimizer(optimizer, hostTree(QUAD_X0, QUAD_SHAPES), {
            device: gpu,
          });
          const trajectory: Float64Array[][] = [];
          for (let t = 1; t <= QUAD_STEPS; t++) {
            if (setHyper && t === change) opt.setHyper({ lr: lr2 });
            await opt.step(hostTree(quadGrad(await readTree(opt.params())), QUAD_SHAPES));
            if (t <= change + 1) trajectory.push(await readTree(opt.params()));
          }
          return { trajectory, final: await readTree(opt.params()) };
        };
        // A program bakes in where its input arrays lie (buffer and offset), and donated results
        // can land in another array's region, so the first steps may compile new programs by
        // themselves (Adam here: steps 1–3, then the layout repeats). A run without setHyper
        // compiles everything these steps need; a second run that changes lr must then compile
        // nothing at all.
        await run(false);
        const programs = gpu.programCount;
        const { trajectory, final } = await run(true);
        expect(gpu.programCount, 'programs compiled by the run with setHyper').toBe(programs);
        expect(quadLoss(final)).toBeLessThanOrEqual(QUAD_MAX_RATIO * quadLoss(QUAD_X0));
        // The step after the change used lr₂: vs the float64 reference started from the same f32
        // values. f32 over 5 steps on these O(10) gradients: the per-case bounds of
        // baselines.test.ts give ≤ 4e-4 for these settings (SGD's momentum sum and Adam's 1 − β₂ᵗ
        // cancellation dominate); 1e-3·max(1, |ref|) here, while keeping lr₁ ends ≥ 1e-2 away
        // (asserted).
        const hyper = (lr: number) =>
          Object.fromEntries(
            Object.entries({ ...optimizer.hyper, lr }).map(([k, v]) => [
              k,
              typeof v === 'number' ? Math.fround(v) : v,
            ]),
          );
        const want = runReference(entry.reference, QUAD_X0, change + 1, quadGrad, (t) =>
          hyper(t < change ? lr1 : lr2),
        );
        const unchanged = runReference(entry.reference, QUAD_X0, change + 1, quadGrad, () =>
          hyper(lr1),
        );
        const [error, power] = [
          worstScaled(trajectory[change], want.params),
          worstScaled(unchanged.params, want.params),
        ];
        console.log(
          `${entry.name} WebGPU after setHyper: scaled error ` +
            `${error.toExponential(2)} (keeping lr₁: ${power.toExponential(2)})`,
        );
        expect(error).toBeLessThanOrEqual(1e-3);
        expect(power).toBeGreaterThanOrEqual(1e-2);
      },
    );
  },
);
