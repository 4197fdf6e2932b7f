// Section 5: square f32 matmuls, GFLOP/s (2k³ flops per product).
import { jit, matmul, type Device, type DeviceArray, type Tensor } from '../../index.js';
import { jaxMatmul, tfMatmul } from '../peers/peers.js';
import { plainMatmul } from '../peers/plain-js.js';
import type { Section } from '../report.js';
import { measure, type BenchContext } from './contenders.js';

export const MATMUL_SIZES = [256, 512, 1024] as const;
export const matmulName = (k: number) => `matmul ${k}³`;

/** Two k×k f32 operands on `device` (deterministic waves in [−0.5, 0.5]). */
export function squareOperands(device: Device, k: number): [DeviceArray, DeviceArray] {
  const wave = (phase: number) =>
    device.upload(
      Float64Array.from({ length: k * k }, (_, i) => Math.sin(i * 12.9898 + phase) * 0.5),
      [k, k],
      'f32',
    );
  return [wave(0), wave(1)];
}

export async function matmulSection(ctx: BenchContext): Promise<Section> {
  const rows = [];
  for (const k of MATMUL_SIZES) {
    const [a, b] = squareOperands(ctx.device, k);
    const mm = jit((x: Tensor, y: Tensor) => matmul(x, y), { device: ctx.device });
    rows.push(
      ...(await measure(
        ctx,
        {
          name: matmulName(k),
          grng: [
            {
              library: 'grng (jit)',
              run: async () => {
                (await mm(a, b)).dispose();
                await ctx.done();
              },
              dispatches: 1,
            },
          ],
          tf: (tf) => tfMatmul(tf, k),
          jax: (jax) => jaxMatmul(jax, k),
          plain: () => plainMatmul(k),
          rate: (ms) => `${((2 * k ** 3) / (ms * 1e6)).toFixed(2)} GFLOP/s`,
        },
        k >= 1024 ? 5 : 9,
        1,
      )),
    );
  }
  return {
    title: 'Matmul',
    about:
      'Square f32 products, 2k³ flops each. Target: grng ≥ 18 GFLOP/s on ' +
      'llvmpipe and ≥ 2.5× TF.js and jax-js webgpu.',
    rows,
  };
}
