// The WebGPU devices the compiler suites run on, opened once per test file.
import { createDevice } from '../../index.js';
import { WebGpuDevice } from '../../runtime/webgpu-device.js';

/** WebGPU's default limits that kernel compilation respects: what any adapter offers. */
export const DEFAULT_KERNEL_LIMITS = {
  maxStorageBuffersPerShaderStage: 8,
  maxComputeInvocationsPerWorkgroup: 256,
  maxComputeWorkgroupSizeX: 256,
};

const opened = new Map<string, Promise<WebGpuDevice>>();

/**
 * The default WebGPU device (llvmpipe in compatibility mode on machines without a GPU), or
 * SwiftShader (core feature level) — the second software adapter (docs/architecture.md, WebGPU
 * adapters).
 */
export function gpuDevice(backend: 'auto' | 'swiftshader' = 'auto'): Promise<WebGpuDevice> {
  let device = opened.get(backend);
  if (device === undefined) {
    device = createDevice({ backend }).then((d) => {
      if (!(d instanceof WebGpuDevice))
        throw new Error(`expected a WebGPU device, got ${d.description}`);
      return d;
    });
    opened.set(backend, device);
  }
  return device;
}

/**
 * Records in `encoder` one dispatch of `pipeline` over `workgroups` workgroups, with `buffers`
 * bound at bindings 0, 1, … of group 0: how the tests run a hand-written kernel.
 */
export function recordDispatch(
  gpu: GPUDevice,
  encoder: GPUCommandEncoder,
  pipeline: GPUComputePipeline,
  buffers: readonly GPUBuffer[],
  workgroups: number,
): void {
  const pass = encoder.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(
    0,
    gpu.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
    }),
  );
  pass.dispatchWorkgroups(workgroups);
  pass.end();
}
