import { GrngError } from '../core/errors.js';
import { CpuDevice } from './cpu-device.js';
import type { Device } from './device.js';
import { openGpu, type OpenGpuOptions } from './gpu/open-gpu.js';
import type { Precision } from './interpreter.js';
import { memoryBounds, WebGpuDevice, type WebGpuMemoryOptions } from './webgpu-device.js';

/**
 * For WebGPU, also the bounds on what the device caches (maxExecutables, maxPipelines,
 * maxPooledBytes; see WebGpuMemoryOptions).
 */
export interface DeviceOptions extends WebGpuMemoryOptions {
  /** 'webgpu' (default): a GPU adapter through WebGPU. 'cpu': the reference interpreter. */
  readonly kind?: 'cpu' | 'webgpu';
  /** For the CPU interpreter: float64 math (default) or float32 rounding of every value. */
  readonly precision?: Precision;
  /** For WebGPU in Node: which Dawn path to open ('auto' falls back by itself; see openGpu). */
  readonly backend?: OpenGpuOptions['backend'];
  /** For WebGPU: require this feature level. */
  readonly featureLevel?: OpenGpuOptions['featureLevel'];
}

/**
 * Opens a device: by default the best WebGPU adapter (a real GPU, else Mesa llvmpipe or
 * SwiftShader in software), or the reference interpreter with `{ kind: 'cpu' }`.
 */
export async function createDevice(options: DeviceOptions = {}): Promise<Device> {
  const kind = options.kind ?? 'webgpu';
  if (kind === 'cpu') {
    const precision = options.precision ?? 'f64';
    if (precision !== 'f64' && precision !== 'f32')
      throw new GrngError(
        'createDevice',
        `precision must be 'f64' or 'f32', got ${String(precision)}`,
      );
    return new CpuDevice(precision);
  }
  if (kind === 'webgpu') {
    memoryBounds(options); // a bad bound fails before an adapter is opened
    const gpu = await openGpu({ backend: options.backend, featureLevel: options.featureLevel });
    return new WebGpuDevice(
      {
        device: gpu.device,
        description: `${gpu.adapterName} (${gpu.backend}, ${gpu.featureLevel})`,
        owner: gpu,
      },
      options,
    );
  }
  throw new GrngError('createDevice', `unknown device kind ${String(kind)}; use 'webgpu' or 'cpu'`);
}
