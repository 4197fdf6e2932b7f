// The WebGPU device the compiler suites run on, opened once per test file.
import { createDevice } from '../../index.js';
import { WebGpuDevice } from '../../runtime/webgpu-device.js';

let opened: Promise<WebGpuDevice> | undefined;

/** The default WebGPU device (llvmpipe in compatibility mode on machines without a GPU). */
export function gpuDevice(): Promise<WebGpuDevice> {
  opened ??= createDevice().then((d) => {
    if (!(d instanceof WebGpuDevice)) throw new Error(`expected a WebGPU device, got ${d.description}`);
    return d;
  });
  return opened;
}
