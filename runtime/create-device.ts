import { GrngError } from '../compiler/ir/index.js';
import { CpuDevice } from './cpu-device.js';
import type { Device } from './device.js';
import type { Precision } from './interpreter.js';
import { openWebGpuDevice } from './open-webgpu-device.js';

export interface DeviceOptions {
  /** 'cpu': the reference interpreter. 'webgpu' (default): a GPU adapter through WebGPU. */
  readonly kind?: 'cpu' | 'webgpu';
  /** For the CPU interpreter: float64 math (default) or float32 rounding of every value. */
  readonly precision?: Precision;
}

/** Opens a device. The WebGPU runtime is not part of this build yet; the CPU interpreter is. */
export async function createDevice(options: DeviceOptions = {}): Promise<Device> {
  const kind = options.kind ?? 'webgpu';
  if (kind === 'cpu') {
    const precision = options.precision ?? 'f64';
    if (precision !== 'f64' && precision !== 'f32') throw new GrngError('createDevice', `precision must be 'f64' or 'f32', got ${String(precision)}`);
    return new CpuDevice(precision);
  }
  if (kind === 'webgpu') return openWebGpuDevice();
  throw new GrngError('createDevice', `unknown device kind ${String(kind)}; use 'webgpu' or 'cpu'`);
}
