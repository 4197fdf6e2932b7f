// Large elementwise dispatches over the caller's arrays only (an optimizer updating parameters and
// state in place) write their placements as literals (LITERAL_PLACEMENTS_FROM in
// compiler/wgsl/kernel.ts); every other dispatch reads them from its offsets uniform, so kernels
// of one structure share a pipeline. Checked on the WGSL the device compiled and on the values:
// the update x ← x·(1 − s) + y/(1 + s²) rounds the same operations as the f32 interpreter in the
// same order, except WGSL's division (within 2.5 ULP of the quotient): ≤ 3.5 ULP of the terms.
import { describe, expect, test } from 'vitest';
import { add, div, input, mul, sub } from '../../index.js';
import { LITERAL_PLACEMENTS_FROM } from '../../compiler/wgsl/kernel.js';
import { interpret } from '../../runtime/interpreter.js';
import { gpuDevice } from '../support/gpu.js';
import { prng, uniform } from '../support/random.js';

const ULP = 2 ** -24;

async function update(elements: number, donate: boolean, seed: number) {
  const gpu = await gpuDevice();
  const [x, y, s] = [input('x', [elements]), input('y', [elements]), input('s', [])];
  const out = add(mul(x, sub(1, s)), div(y, add(1, mul(s, s)))).node;
  const rng = prng(seed);
  const values = [uniform(rng, elements, -1, 1), uniform(rng, elements, -1, 1), [0.25]];
  const ref = interpret(
    [out],
    new Map([
      ['x', Float64Array.from(values[0])],
      ['y', Float64Array.from(values[1])],
      ['s', Float64Array.from(values[2])],
    ]),
    { precision: 'f32' },
  )[0];
  const shaders = () => [
    ...(gpu as unknown as { pipelines: Map<string, unknown> }).pipelines.keys(),
  ];
  const before = new Set(shaders());
  const [arrays, scale] = [
    gpu.uploadAll([
      { data: Float64Array.from(values[0]), shape: [elements], dtype: 'f32' },
      { data: Float64Array.from(values[1]), shape: [elements], dtype: 'f32' },
    ]),
    gpu.upload(Float64Array.from(values[2]), [], 'f32'),
  ];
  const [result] = await gpu.execute(
    [out],
    new Map([
      ['x', arrays[0]],
      ['y', arrays[1]],
      ['s', scale],
    ]),
    { donated: donate ? new Set(['x']) : new Set() },
  );
  const got = await result.read();
  for (let i = 0; i < elements; i++) {
    const terms = Math.abs(values[0][i] * 0.75) + Math.abs(values[1][i] / 1.0625);
    expect(Math.abs(got[i] - ref[i]), `element ${i}`).toBeLessThanOrEqual(3.5 * ULP * terms);
  }
  return shaders().filter((code) => !before.has(code));
}

describe('literal placements', () => {
  const large = 4 * LITERAL_PLACEMENTS_FROM;

  test('a large update in place over the caller arrays has no offsets uniform', async () => {
    const added = await update(large, true, 1);
    expect(added).toHaveLength(1);
    expect(added[0]).not.toContain('var<uniform> offsets');
    // its placements are in the text: the second array starts where the first ends
    expect(added[0]).toContain(`${large / 4}u`);
  });

  test('the same update into a results buffer, or a small one, reads its offsets uniform', async () => {
    for (const [elements, donate, seed] of [
      [large, false, 2],
      [large / 8, true, 3],
    ] as const) {
      const added = await update(elements, donate, seed);
      expect(added.length).toBeLessThanOrEqual(1);
      for (const code of added) expect(code).toContain('var<uniform> offsets');
    }
  });
});
