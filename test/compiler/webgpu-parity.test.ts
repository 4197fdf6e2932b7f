// Compiled WGSL on WebGPU vs the float32 interpreter, on random programs (values, the scalar
// output and its gradient), fused and unfused.
//
// Bound: |gpu − ref| ≤ TOL·(1 + |ref|). The interpreter rounds like an ideal f32 machine; the
// software adapters' exp/log/pow/sin/cos are within a few f32 ULP (2^-24 ≈ 6e-8) of it, and
// summation orders differ (≤ 48 terms: 48·2^-24 ≈ 3e-6). Programs chain ≤ 8 ops (plus their
// gradient) with coefficients ≤ 3, so errors amplify by ≲ 10²: TOL = 1e-4 (measured worst:
// ~4e-7). WGSL itself only promises sin/cos to 2^-11 absolute, so a hardware adapter with
// coarse sin/cos could exceed this bound without a compiler bug. The programs include erf and
// gelu (grng_erf: within 3 ULP of the correctly rounded erf, see webgpu-erf-gather.test.ts, so
// inside "a few ULP") and take (row copies, exact; its gradient is a one-hot matmul summing ≤ 48
// terms, inside the summation bound).
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { jit, type DeviceArray, type Tensor } from '../../index.js';
import { CpuDevice } from '../../runtime/cpu-device.js';
import { gpuDevice } from '../support/gpu.js';
import { kinkMargin, programArb, type Program } from '../support/programs.js';

const TOL = 1e-4;
/**
 * SwiftShader uses WGSL's full accuracy allowances (sin/cos to 2^-11 ≈ 4.9e-4 absolute,
 * exp/pow to 3 + 2|x| ULP); amplified ≲ 10× through these programs: 5e-3 (measured worst ~1e-4).
 */
const TOL_SWIFTSHADER = 5e-3;
/** f32 results may round differently near a kink (a comparison can flip): keep 1e-3 away. */
const KINK_MARGIN = 1e-3;
const NUM_RUNS = 40;

function outputs(p: Program): (...xs: Tensor[]) => Tensor[] {
  return (...xs) => [...p.pool(xs).slice(xs.length), ...p.scalarAndGradients(xs)];
}

async function compare(
  p: Program,
  fuse: boolean,
  backend: 'auto' | 'swiftshader' = 'auto',
): Promise<number> {
  const gpu = await gpuDevice(backend);
  gpu.fuse = fuse;
  const cpu = new CpuDevice('f32');
  const f = outputs(p);
  const xs = p.inputValues();
  const args = xs.map((x, i) => cpu.upload(x, p.shapes[i], 'f32'));
  const want = await Promise.all(
    ((await jit(f, { device: cpu })(...args)) as DeviceArray[]).map((a) => a.read()),
  );
  // Fused runs pass the inputs packed into one buffer (as uploadAll and trainers do: views at
  // offsets); unfused runs pass a buffer per input. Both layouts are compiled into the kernels.
  const gpuArgs = fuse
    ? gpu.uploadAll(xs.map((data, i) => ({ data, shape: p.shapes[i], dtype: 'f32' as const })))
    : xs.map((x, i) => gpu.upload(x, p.shapes[i], 'f32'));
  const got = await Promise.all(
    ((await jit(f, { device: gpu })(...gpuArgs)) as DeviceArray[]).map((a) => a.read()),
  );
  let worst = 0;
  want.forEach((w, k) => {
    expect(got[k].length).toBe(w.length);
    w.forEach((ref, i) => {
      if (!Number.isFinite(ref)) return expect(got[k][i]).toBe(ref);
      worst = Math.max(worst, Math.abs(got[k][i] - ref) / (1 + Math.abs(ref)));
    });
  });
  return worst;
}

describe('WebGPU kernels match the float32 interpreter', () => {
  for (const fuse of [true, false]) {
    test(`random programs, ${fuse ? 'fused' : 'unfused (one kernel per op)'}`, async () => {
      let worst = 0;
      await fc.assert(
        fc.asyncProperty(programArb({ maxInstructions: 8 }), async (p) => {
          fc.pre(kinkMargin((xs) => p.scalar(xs), p.shapes, p.inputValues()) >= KINK_MARGIN);
          const err = await compare(p, fuse);
          worst = Math.max(worst, err);
          expect(err).toBeLessThanOrEqual(TOL);
        }),
        { numRuns: NUM_RUNS },
      );
      console.log(
        `${fuse ? 'fused' : 'unfused'}: worst scaled error ` +
          `${worst.toExponential(2)} over ${NUM_RUNS} programs`,
      );
    });
  }

  // The second software adapter (SwiftShader, core feature level, other limits): a smaller run.
  test('random programs on SwiftShader, fused', async () => {
    let worst = 0;
    await fc.assert(
      fc.asyncProperty(programArb({ maxInstructions: 8 }), async (p) => {
        fc.pre(kinkMargin((xs) => p.scalar(xs), p.shapes, p.inputValues()) >= KINK_MARGIN);
        const err = await compare(p, true, 'swiftshader');
        worst = Math.max(worst, err);
        expect(err).toBeLessThanOrEqual(TOL_SWIFTSHADER);
      }),
      { numRuns: 15 },
    );
    console.log(`SwiftShader: worst scaled error ${worst.toExponential(2)} over 15 programs`);
  });
});
