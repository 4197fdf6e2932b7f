// The peer grng's AdamW is measured against: one hand-written vec4 WGSL kernel that reads
// θ, m, v, g once and writes θ, m, v once, with the hyperparameters as constants.

export interface AdamWHyper {
  readonly lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  readonly step: number;
}

const STORAGE = 0x0080;
const COPY_DST = 0x0008;

export function handWrittenAdamW(
  gpu: GPUDevice,
  n: number,
  h: AdamWHyper,
): { run(): void; destroy(): void } {
  const f = (x: number) => `${Math.fround(x).toExponential(8)}f`;
  // All tensors of a parameter list as one buffer, padded to whole vec4s: the bandwidth floor.
  const vectors = Math.ceil(n / 4);
  const code = `
@group(0) @binding(0) var<storage, read_write> theta: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> m: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> v: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> g: array<vec4<f32>>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let i = id.x;
  if (i >= ${vectors}u) { return; }
  let gi = g[i];
  let m1 = m[i] * ${f(h.beta1)} + gi * ${f(1 - h.beta1)};
  let v1 = v[i] * ${f(h.beta2)} + gi * gi * ${f(1 - h.beta2)};
  let update = (m1 / ${f(1 - h.beta1 ** h.step)}) / (sqrt(v1 / ${f(1 - h.beta2 ** h.step)}) + ${f(h.eps)}) + theta[i] * ${f(h.weightDecay)};
  theta[i] = theta[i] - ${f(h.lr)} * update;
  m[i] = m1;
  v[i] = v1;
}`;
  const buffers = [0, 1, 2, 3].map(() =>
    gpu.createBuffer({ size: vectors * 16, usage: STORAGE | COPY_DST }),
  );
  const init = new Float32Array(vectors * 4).map((_, i) => Math.sin(i) * 0.5);
  buffers.forEach((b, k) => gpu.queue.writeBuffer(b, 0, k === 2 ? init.map((x) => x * x) : init));
  const pipeline = gpu.createComputePipeline({
    layout: 'auto',
    compute: { module: gpu.createShaderModule({ code }), entryPoint: 'main' },
  });
  const bindGroup = gpu.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
  });
  const groups = Math.ceil(vectors / 64);
  return {
    run() {
      const encoder = gpu.createCommandEncoder();
      const pass = encoder.beginComputePass();
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bindGroup);
      pass.dispatchWorkgroups(Math.min(groups, 65535), Math.ceil(groups / 65535));
      pass.end();
      gpu.queue.submit([encoder.finish()]);
    },
    destroy() {
      buffers.forEach((b) => b.destroy());
    },
  };
}
