// Opening WebGPU adapters: the default one, both software paths of docs/architecture.md (llvmpipe
// in compatibility mode, SwiftShader in core mode), a real dispatch on each, and the messages a
// user sees. Dawn writes warnings to stderr; nothing here reads stderr.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatAdapter, formatFailure, KEY_LIMITS, type DoctorInfo } from '../../cli/doctor.js';
import { GrngError } from '../../core/errors.js';
import { maxLimits } from '../../runtime/gpu/gpu-context.js';
import { openGpu, type GpuContext } from '../../runtime/gpu/open-gpu.js';
import {
  noAdapterMessage,
  SOFTWARE_PATHS,
  type PackageChecker,
} from '../../runtime/gpu/system-packages.js';

const ADD_WGSL = /* wgsl */ `
@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  if (id.x < arrayLength(&c)) { c[id.x] = a[id.x] + b[id.x]; }
}`;

// Runs c = a + b on the device and reads c back.
async function addOnDevice(
  device: GPUDevice,
  a: Float32Array,
  b: Float32Array,
): Promise<Float32Array> {
  const storage = (data: Float32Array | null, usage: number): GPUBuffer => {
    const buffer = device.createBuffer({
      size: a.byteLength,
      usage,
      mappedAtCreation: data !== null,
    });
    if (data !== null) {
      new Float32Array(buffer.getMappedRange()).set(data);
      buffer.unmap();
    }
    return buffer;
  };
  const ba = storage(a, GPUBufferUsage.STORAGE);
  const bb = storage(b, GPUBufferUsage.STORAGE);
  const bc = storage(null, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC);
  const readback = storage(null, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
  const pipeline = device.createComputePipeline({
    layout: 'auto',
    compute: { module: device.createShaderModule({ code: ADD_WGSL }), entryPoint: 'main' },
  });
  const bindGroup = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [ba, bb, bc].map((buffer, binding) => ({ binding, resource: { buffer } })),
  });
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup);
  pass.dispatchWorkgroups(Math.ceil(a.length / 64));
  pass.end();
  encoder.copyBufferToBuffer(bc, 0, readback, 0, a.byteLength);
  device.queue.submit([encoder.finish()]);
  await readback.mapAsync(GPUMapMode.READ);
  const result = new Float32Array(readback.getMappedRange().slice(0));
  readback.unmap();
  for (const buffer of [ba, bb, bc, readback]) buffer.destroy();
  return result;
}

function numericLimits(limits: GPUSupportedLimits): Record<string, number> {
  const out: Record<string, number> = {};
  for (const name in limits) {
    const value: unknown = Reflect.get(limits, name);
    if (typeof value === 'number') out[name] = value;
  }
  return out;
}

describe('openGpu', () => {
  const opened: GpuContext[] = [];
  let llvmpipe: GpuContext;
  let swiftshader: GpuContext;

  beforeAll(async () => {
    llvmpipe = await openGpu({ backend: 'opengles' });
    swiftshader = await openGpu({ backend: 'swiftshader' });
    opened.push(llvmpipe, swiftshader);
  });
  afterAll(() => {
    for (const gpu of opened) gpu.destroy();
  });

  it("opens the default adapter with the adapter's maximum limits", async () => {
    const gpu = await openGpu();
    opened.push(gpu);
    expect(gpu.adapterName.length).toBeGreaterThan(0);
    const device = numericLimits(gpu.device.limits);
    expect(Object.keys(device).length).toBeGreaterThan(20);
    expect(device).toEqual(maxLimits(gpu.adapter));
    expect(gpu.limits).toBe(gpu.device.limits);
  });

  it('gives llvmpipe through OpenGL ES at the compatibility feature level', () => {
    expect(llvmpipe.backend).toBe('opengles');
    expect(llvmpipe.featureLevel).toBe('compatibility');
    expect(llvmpipe.adapterName).toMatch(/llvmpipe/);
    // The default of 128 invocations per workgroup was raised to what llvmpipe offers.
    expect(llvmpipe.limits.maxComputeInvocationsPerWorkgroup).toBe(
      llvmpipe.adapter.limits.maxComputeInvocationsPerWorkgroup,
    );
    expect(numericLimits(llvmpipe.device.limits)).toEqual(maxLimits(llvmpipe.adapter));
  });

  it('gives SwiftShader through Vulkan at the core feature level, with its useful features', () => {
    expect(swiftshader.backend).toBe('vulkan');
    expect(swiftshader.featureLevel).toBe('core');
    expect(swiftshader.adapterName).toMatch(/SwiftShader/);
    for (const f of ['timestamp-query', 'subgroups']) {
      if (swiftshader.adapter.features.has(f)) expect(swiftshader.features).toContain(f);
    }
    expect(numericLimits(swiftshader.device.limits)).toEqual(maxLimits(swiftshader.adapter));
  });

  it('computes exactly on both software adapters', async () => {
    const n = 1000; // not a multiple of the workgroup size
    const a = Float32Array.from({ length: n }, (_, i) => i * 0.5);
    const b = Float32Array.from({ length: n }, (_, i) => 1000 - i * 0.25);
    const expected = a.map((x, i) => x + (b[i] ?? 0)); // exact: sums of small multiples of 1/4
    for (const gpu of [llvmpipe, swiftshader]) {
      expect(await addOnDevice(gpu.device, a, b), gpu.adapterName).toEqual(expected);
    }
  });

  it('gives a fresh device on every call', async () => {
    const again = await openGpu({ backend: 'opengles' });
    opened.push(again);
    expect(again.device).not.toBe(llvmpipe.device);
  });

  it('refuses impossible requests with a GrngError from createDevice', async () => {
    const error = await openGpu({ backend: 'opengles', featureLevel: 'core' }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(GrngError);
    expect((error as GrngError).op).toBe('createDevice');
    expect((error as GrngError).message).toMatch(/only the compatibility feature level/);
  });
});

describe('the no-adapter message', () => {
  const attempts = [
    { path: 'native', reason: "Dawn's vulkan backend offered no adapter" },
    { path: 'opengles', reason: "Dawn's opengles backend offered no adapter" },
    { path: 'swiftshader', reason: '/usr/lib/chromium/vk_swiftshader_icd.json not found' },
  ];
  const only =
    (...installed: string[]): PackageChecker =>
    () =>
      new Set(installed);

  it('names exactly the missing packages and the command that installs them', () => {
    const message = noAdapterMessage(attempts, only('libegl1', 'libgles2', 'libvulkan1'));
    expect(message).toContain("native: Dawn's vulkan backend offered no adapter");
    expect(message).toContain('missing: libegl-mesa0 libgl1-mesa-dri.');
    expect(message).toContain('missing: chromium.');
    expect(message).toContain(
      'apt-get install -y --no-install-recommends libegl-mesa0 libgl1-mesa-dri chromium',
    );
  });

  it('says so when the packages are there yet no adapter came up', () => {
    const everything = Object.values(SOFTWARE_PATHS).flatMap((p) => p.packages);
    const message = noAdapterMessage(attempts, only(...everything));
    expect(message).not.toContain('apt-get');
    expect(message).toMatch(/are installed, yet it gave no adapter/);
  });

  it('lists what each path needs when it cannot check packages', () => {
    const message = noAdapterMessage(attempts, () => null);
    expect(message).toContain('no dpkg-query');
    expect(message).toContain('libvulkan1 chromium');
    expect(message).toContain('libegl1 libegl-mesa0 libgles2 libgl1-mesa-dri');
  });
});

describe('grng doctor formatting', () => {
  const limits = Object.fromEntries(KEY_LIMITS.map((k) => [k, 256])) as DoctorInfo['limits'];
  const info: DoctorInfo = {
    adapterName: 'SwiftShader driver 5.0.0 (google, swiftshader)',
    backend: 'vulkan',
    path: 'swiftshader',
    featureLevel: 'core',
    features: ['subgroups', 'timestamp-query'],
    limits: {
      ...limits,
      maxStorageBufferBindingSize: 2 ** 30,
      maxComputeWorkgroupStorageSize: 32768,
    },
  };

  it('shows the adapter, backend, feature level, features and key limits', () => {
    const text = formatAdapter(info);
    expect(text).toContain('adapter:       SwiftShader driver 5.0.0 (google, swiftshader)');
    expect(text).toContain('backend:       vulkan (path: swiftshader)');
    expect(text).toContain('feature level: core');
    expect(text).toContain('features:      subgroups, timestamp-query');
    expect(text).toMatch(/maxStorageBufferBindingSize +1073741824 \(1 GiB\)/);
    expect(text).toMatch(/maxComputeWorkgroupStorageSize +32768 \(32 KiB\)/);
    expect(text).toMatch(/maxStorageBuffersPerShaderStage +256\n/);
    for (const name of KEY_LIMITS) expect(text).toContain(name);
    // One array fits one buffer (maxBufferSize, here 256 bytes); one past a binding is bound as
    // windows of the binding (the smaller of the two limits, here 256 bytes too).
    expect(text).toContain('largest array: 256 bytes (one past a binding, 256 bytes,');
  });

  it('indents the reason a path failed', () => {
    expect(formatFailure('== native', 'createDevice: none\nline two')).toBe(
      '== native: no adapter\n  createDevice: none\n  line two\n',
    );
  });
});
