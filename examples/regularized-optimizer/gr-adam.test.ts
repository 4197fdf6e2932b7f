// GR-Adam's model-level check, in npm test: the compiled training step equals the float64
// reference, and a reference with ρ 1 % off is caught with a shrunk counterexample — the check
// sees the ρ·H∇L term even though Adam divides the step by the gradient's own scale.
import { expect, test } from 'vitest';
import { checkGrAdam } from './check.js';

test('GR-Adam equals its float64 reference on random models; ρ 1 % off fails', async () => {
  const lines: string[] = [];
  const log = (line: string) => lines.push(line);
  const ok = await checkGrAdam({ log });
  console.log(`${lines[0]} → worst error ${ok.worstError.toExponential(2)}`);
  // The same float64 formulas in another order: a few ulps (measured 2.1e-16 here, at most 7e-16
  // over seeds 1–12). The checker's own tolerance, which the run must meet, is 1e-9.
  expect(ok.worstError).toBeLessThan(1e-12);
  // Seed 2 draws a relu pre-activation of exactly 0, where max(s, 0) splits the derivative (½);
  // Adam turns the tiny gradient this leaves into a full step, so both sides must agree on it.
  expect((await checkGrAdam({ log, seed: 2 })).worstError).toBeLessThan(1e-12);
  const failure = await checkGrAdam({ log, rhoScale: 1.01 }).catch((e: unknown) => e);
  expect(failure).toBeInstanceOf(Error);
  const message = (failure as Error).message;
  console.log(message);
  expect(message).toMatch(/gr-adam differs from the reference by .* at step \d in layers\.\d\.\w/);
  expect(message).toMatch(/Shrunk counterexample \(\d+ shrinks; seed \d+, path: '[\d:]+'\)/);
  expect(message).toMatch(/Replay it with checkTrainingOptimizer/);
});
