// Shared by the RING and RENG suites: the small LoRA-adapted MLP and the batch their compiled
// (WebGPU) comparisons and degenerate-factor (LoRA from B = 0) checks run on.
import { array, nn, tanh, type Model, type Tensor } from '../../index.js';
import type { HostArray } from '../../core/host-array.js';
import { prng, uniform } from '../support/random.js';

/**
 * A 2-layer MLP whose first layer is a LoRA-adapted frozen dense layer: taps fc1.a, fc1.b and
 * head.
 */
export function loraMlp(): Model<{
  fc1: { a: Tensor; b: Tensor };
  head: { w: Tensor; b?: Tensor };
}> {
  const base = nn.dense(4, 8).init(7) as { w: HostArray; b: HostArray };
  const adapter = nn.loraDense(base, 2, { name: 'fc1' });
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
