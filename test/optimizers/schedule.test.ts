// scheduled(): an optimizer whose lr follows a warm-up and a decay (docs/algorithms.md §6.0),
// checked against the schedule's formula evaluated here in float64, independently of the DSL.
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  adamw,
  array,
  compileOptimizer,
  createDevice,
  defineOptimizer,
  GrngError,
  ring,
  scheduled,
  sgd,
  sub,
  type DeviceArray,
} from '../../index.js';
import { gpuDevice } from '../support/gpu.js';

const cpu = await createDevice({ kind: 'cpu' });

type Schedule = {
  schedule: 'constant' | 'linear' | 'cosine';
  warmupSteps: number;
  decaySteps: number;
  finalScale: number;
};

/** The multiplier on step t, written from the definition in docs/algorithms.md §6.0. */
function multiplier(t: number, s: Schedule): number {
  const warm = s.warmupSteps > 0 ? Math.min(1, t / s.warmupSteps) : 1;
  if (s.schedule === 'constant') return warm;
  const progress = Math.min(1, Math.max(0, (t - s.warmupSteps) / (s.decaySteps - s.warmupSteps)));
  const shape = s.schedule === 'linear' ? 1 - progress : (1 + Math.cos(Math.PI * progress)) / 2;
  return warm * (s.finalScale + (1 - s.finalScale) * shape);
}

/** SGD (lr 1, no momentum) on a constant unit gradient: step t moves θ by −multiplier(t). */
async function steps(s: Schedule, count: number, device = cpu): Promise<number[]> {
  const opt = await compileOptimizer(scheduled(sgd({ lr: 1 }), s), [array([0])], { device });
  const moves: number[] = [];
  let before = 0;
  for (let t = 1; t <= count; t++) {
    await opt.step([array([1])]);
    const [after] = await (opt.params() as DeviceArray[])[0].read();
    moves.push(before - after);
    before = after;
  }
  return moves;
}

const schedules = fc
  .record({
    schedule: fc.constantFrom('constant' as const, 'linear' as const, 'cosine' as const),
    warmupSteps: fc.integer({ min: 0, max: 4 }),
    length: fc.integer({ min: 1, max: 8 }),
    finalScale: fc.double({ min: 0, max: 1, noNaN: true }),
  })
  .map(({ length, ...s }) => ({ ...s, decaySteps: s.warmupSteps + length }));

describe('scheduled', () => {
  test('each step moves SGD by lr times the schedule multiplier (float64)', async () => {
    await fc.assert(
      fc.asyncProperty(schedules, async (s) => {
        // Two steps past the decay's end, where the multiplier stays at finalScale.
        const moves = await steps(s, s.decaySteps + 2);
        moves.forEach((move, i) => {
          // float64 interpreter: a few roundings of numbers ≤ 1 (cos, divisions, θ's sums of ≤ 14
          // terms) stay far below 1e-13.
          expect(Math.abs(move - multiplier(i + 1, s))).toBeLessThanOrEqual(1e-13);
        });
      }),
      { numRuns: 30 },
    );
  });

  test('on WebGPU the cosine schedule matches in float32', async () => {
    const s: Schedule = { schedule: 'cosine', warmupSteps: 3, decaySteps: 12, finalScale: 0.1 };
    const moves = await steps(s, 14, await gpuDevice());
    moves.forEach((move, i) => {
      // θ is a float32 sum of ≤ 14 moves ≤ 1 (each rounding ≤ 2⁻²⁴·14 ≈ 8e-7 of θ's size), and
      // WGSL's f32 cos may be off by 2⁻¹¹ absolute on [−π, π] (WGSL §17.5 accuracy table), times
      // (1 − f)/2 < 0.5: at most 2.5e-4 plus the subtraction of two θ's (≤ 2·8e-7·14).
      expect(Math.abs(move - multiplier(i + 1, s))).toBeLessThanOrEqual(2.5e-4 + 3e-5);
    });
  });

  test('AdamW under a schedule equals AdamW with the lr set to lr·multiplier before each step', async () => {
    const s: Schedule = { schedule: 'linear', warmupSteps: 2, decaySteps: 6, finalScale: 0.2 };
    const start = () => [array([0.5, -1, 2]), array([0.25])];
    const withSchedule = await compileOptimizer(
      scheduled(adamw({ lr: 0.1, weightDecay: 0.3 }), s),
      start(),
      { device: cpu },
    );
    const byHand = await compileOptimizer(adamw({ lr: 0.1, weightDecay: 0.3 }), start(), {
      device: cpu,
    });
    for (let t = 1; t <= 8; t++) {
      const grads = () => [array([Math.sin(t), 0.5 - t / 7, t % 3]), array([Math.cos(3 * t)])];
      await withSchedule.step(grads());
      byHand.setHyper({ lr: 0.1 * multiplier(t, s) });
      await byHand.step(grads());
    }
    const read = async (opt: { params(): unknown }) =>
      (await Promise.all((opt.params() as DeviceArray[]).map((a) => a.read()))).flatMap((a) => [
        ...a,
      ]);
    const [a, b] = [await read(withSchedule), await read(byHand)];
    // The same float64 operations but lr·multiplier formed in the program vs on the host: equal to
    // a few ulps of values ≤ 2 over 8 steps.
    a.forEach((x, i) => expect(Math.abs(x - b[i])).toBeLessThanOrEqual(1e-14));
  });

  test('settings are checked, and the schedule is part of the name', () => {
    const opt = scheduled(ring(), { schedule: 'cosine', decaySteps: 100 });
    expect(opt.name).toBe('cosine(ring)');
    expect(opt.hyper).toMatchObject({ lr: 1e-2, decaySteps: 100, finalScale: 0, inverseEvery: 10 });
    expect(opt.with({ decaySteps: 50 }).hyper.decaySteps).toBe(50);
    expect(() => opt.with({ schedule: 'linear' })).toThrow(/part of the optimizer's name/);
    expect(() => opt.with({ lr: -1 })).toThrow(/lr must be in/);
    expect(() => scheduled(sgd(), { schedule: 'step' })).toThrow(/schedule must be constant/);
    expect(() => scheduled(sgd(), { warmupSteps: 10, decaySteps: 10 })).toThrow(
      /decaySteps \(10\) must exceed warmupSteps \(10\)/,
    );
    expect(() => scheduled(sgd(), { warmupSteps: 1.5 })).toThrow(/non-negative integer/);
    expect(() => scheduled(sgd(), { finalScale: 2 })).toThrow(/finalScale must be in \[0, 1\]/);
    const descent = <H extends Record<string, number>>(hyper: H) =>
      defineOptimizer({
        name: 'descent',
        hyper,
        init: () => ({}),
        update: ({ params, grads, map }) => ({
          params: map((p, g) => sub(p, g), params, grads),
          state: {},
        }),
      })();
    expect(() => scheduled(descent({ step: 0.1 }))).toThrow(GrngError);
    expect(() => scheduled(descent({ step: 0.1 }))).toThrow(/no numeric 'lr'/);
    expect(() => scheduled(descent({ lr: 0.1, decaySteps: 3 }))).toThrow(
      /already has a hyperparameter named 'decaySteps'/,
    );
  });
});
