// Shared by the RING, RENG and R-Kalman property suites: the check that a test-only mutation of
// an optimizer (optimizers/mutations.ts) makes at least one property fail, and the small
// LoRA-adapted MLP and batch the RING/RENG compiled (WebGPU) comparisons run on.
import fc from 'fast-check';
import { expect } from 'vitest';
import { array, nn, tanh, type Model, type Tensor } from '../../index.js';
import { mutations } from '../../optimizers/mutations.js';
import type { HostArray } from '../../core/host-array.js';
import { prng, uniform } from '../support/random.js';

/** A fast-check property, synchronous or asynchronous. */
export type AnyProperty = Parameters<typeof fc.check>[0];

/** The first line of a property's counterexample after `runs` runs, or undefined when it holds. */
async function failureOf(property: AnyProperty, runs: number): Promise<string | undefined> {
  const details = await fc.check(property, { numRuns: runs, endOnFailure: true });
  if (!details.failed) return undefined;
  const error = details.errorInstance;
  return (error instanceof Error ? error.message : String(error)).split('\n')[0].slice(0, 160);
}

/**
 * Turns mutation `name` on, runs each labelled property `runs` times, and asserts that at least
 * one fails. `quiet` pauses the suite's worst-error tracking while the mutation is on.
 */
export async function expectMutationCaught(
  name: string,
  properties: readonly (readonly [string, AnyProperty])[],
  runs: number,
  quiet: { pause(): void; resume(): void },
): Promise<void> {
  quiet.pause();
  mutations.add(name);
  try {
    const caught: string[] = [];
    for (const [label, property] of properties) {
      const failure = await failureOf(property, runs);
      if (failure !== undefined) caught.push(`${label} → ${failure}`);
    }
    console.log(`mutation ${name}: caught by\n  ${caught.join('\n  ') || 'nothing'}`);
    expect(caught.length, `${name} must make a property fail`).toBeGreaterThan(0);
  } finally {
    mutations.delete(name);
    quiet.resume();
  }
}

/** A 2-layer MLP whose first layer is a LoRA-adapted frozen dense layer: taps fc1.a, fc1.b and head. */
export function loraMlp(): Model<{
  fc1: { a: Tensor; b: Tensor };
  head: { w: Tensor; b?: Tensor };
}> {
  const base = nn.dense(4, 8).init(7) as { w: HostArray; b: HostArray };
  const adapter = nn.lora(base, 2, { name: 'fc1' });
  const head = nn.dense(8, 3, { name: 'head' });
  return {
    init: (seed) => ({ fc1: adapter.init(seed), head: head.init(seed + 1) }),
    apply: (p, x) => head.apply(p.head, tanh(adapter.apply(p.fc1, x))),
  };
}

/** 16 points of 4 features in [−1, 1) with three classes from a fixed rule (seed 21). */
export function threeClassBatch(): { x: HostArray; y: HostArray } {
  const B = 16;
  const x = uniform(prng(21), B * 4);
  const y = Int32Array.from(
    { length: B },
    (_, n) => (x[4 * n] + x[4 * n + 1] > 0 ? 1 : 0) + (x[4 * n + 2] > 0.3 ? 1 : 0),
  );
  return { x: array(x, [B, 4]), y: array(y, [B], 'i32') };
}
