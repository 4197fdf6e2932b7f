// `node --import tsx bench/compile-profile.ts <case> [backend]`: where a new machine's first steps
// of an optimizer case (optimizer-cases.ts) go, pipeline by pipeline. It takes the case's first two
// steps (every step variant's pipelines), then a child process with Mesa's on-disk shader cache
// disabled compiles each distinct WGSL module on a fresh device and dispatches it once (llvmpipe
// compiles at the first dispatch), and prints the time and WGSL size per kind of kernel and the
// slowest kernels. Kinds are read from the generated code's shape (matmul accumulators are
// `c<i>_<j>`; the vec4 kernel's are vec4s; wide reductions use workgroup memory).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createDevice, crossEntropy, nn, WebGpuDevice } from '../index.js';
import type { DeviceOptions } from '../runtime/create-device.js';
import { benchBatch, MLP } from './sections/mlp-step.js';
import { CASES } from './sections/optimizer-cases.js';

const [first, second, third] = process.argv.slice(2);
type Backend = DeviceOptions['backend'];

if (first === '--time') await timeEach(second, third as Backend);
else await collect(first, (second ?? 'opengles') as Backend);
process.exit(0);

/** Runs the case's first two steps, then times their pipelines in a child process. */
async function collect(name: string, backend: Backend): Promise<void> {
  const c = CASES.find((k) => k.name === name);
  if (c === undefined)
    throw new Error(`compile-profile: no case "${name}"; one of: ${CASES.map((k) => k.name)}`);
  const device = await createDevice({ backend });
  if (!(device instanceof WebGpuDevice)) throw new Error('compile-profile: needs WebGPU');
  const model = nn.mlp(MLP.sizes);
  const train = await c.compile({ model, loss: crossEntropy, params: model.init(0), device });
  const batch = benchBatch(c.batch);
  for (let t = 0; t < 2; t++) await train.run(batch);
  // The device's pipeline cache is keyed by WGSL text (read here for profiling only).
  const codes = [...(device as unknown as { pipelines: Map<string, unknown> }).pipelines.keys()];
  const file = join(mkdtempSync(join(tmpdir(), 'grng-profile-')), 'codes.json');
  writeFileSync(file, JSON.stringify(codes));
  const child = spawnSync(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(import.meta.url), '--time', file, String(backend)],
    { env: { ...process.env, MESA_SHADER_CACHE_DISABLE: 'true' }, stdio: 'inherit' },
  );
  if (child.status !== 0)
    throw new Error(`compile-profile: the timing child exited ${child.status}`);
}

/** Compiles and dispatches each WGSL module of `file` once on a fresh device; prints the table. */
async function timeEach(file: string, backend: Backend): Promise<void> {
  const codes = JSON.parse(readFileSync(file, 'utf8')) as string[];
  const device = await createDevice({ backend });
  if (!(device instanceof WebGpuDevice)) throw new Error('compile-profile: needs WebGPU');
  const gpu = device.gpu;
  const rows = [];
  for (const code of codes) {
    const t0 = performance.now();
    const pipeline = gpu.createComputePipeline({
      layout: 'auto',
      compute: { module: gpu.createShaderModule({ code }), entryPoint: 'main' },
    });
    const entries = [...code.matchAll(/@binding\((\d+)\) var<(uniform|storage)/g)].map((m) => ({
      binding: Number(m[1]),
      resource: {
        buffer: gpu.createBuffer({
          size: 1 << 16,
          usage: m[2] === 'uniform' ? GPUBufferUsage.UNIFORM : GPUBufferUsage.STORAGE,
        }),
      },
    }));
    const encoder = gpu.createCommandEncoder();
    const pass = encoder.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, gpu.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries }));
    pass.dispatchWorkgroups(1);
    pass.end();
    gpu.queue.submit([encoder.finish()]);
    await gpu.queue.onSubmittedWorkDone();
    rows.push({ kind: kindOf(code), ms: performance.now() - t0, chars: code.length });
  }
  const kinds = new Map<string, { n: number; ms: number; chars: number }>();
  for (const r of rows) {
    const k = kinds.get(r.kind) ?? { n: 0, ms: 0, chars: 0 };
    kinds.set(r.kind, { n: k.n + 1, ms: k.ms + r.ms, chars: k.chars + r.chars });
  }
  const total = rows.reduce((s, r) => s + r.ms, 0);
  console.log(
    `${codes.length} pipelines, ${(total / 1000).toFixed(1)} s to compile (${device.description})`,
  );
  console.log('| kernel kind | pipelines | compile s | WGSL KiB |\n|---|---|---|---|');
  for (const [kind, k] of [...kinds].sort((x, y) => y[1].ms - x[1].ms))
    console.log(
      `| ${kind} | ${k.n} | ${(k.ms / 1000).toFixed(1)} | ${(k.chars / 1024).toFixed(0)} |`,
    );
  const slowest = [...rows].sort((x, y) => y.ms - x.ms).slice(0, 8);
  console.log(
    `slowest: ${slowest.map((r) => `${r.kind} ${(r.ms / 1000).toFixed(2)} s`).join(', ')}`,
  );
}

function kindOf(code: string): string {
  if (code.includes('var<workgroup>')) return 'wide reduction';
  if (/\bc0_0\b/.test(code)) {
    if (code.includes('var c0_0 = vec4<f32>()')) return 'matmul, vec4 rows';
    return code.includes('dot(') ? 'matmul, vec4 dot' : 'matmul, scalar';
  }
  return code.includes('for (var') ? 'loop (reduction)' : 'elementwise';
}
