// `npm run bench` (issue 9): grng against TensorFlow.js (webgpu), jax-js (webgpu, wasm), plain JS
// and PyTorch CPU on the same adapter, in one process (PyTorch in its own, just before): the
// AdamW update, the MLP training step, every optimizer's step with state bytes and compile
// time, square matmuls, a transformer encoder block and ViT training step, and a model size
// sweep. Each figure: warm-up, then median / min / max of interleaved runs, GPU completion
// awaited. Prints Markdown; writes bench/results/<date>-<adapter>.{json,md}.
// GRNG_BENCH_ADAPTER = llvmpipe (default) | swiftshader | gpu; GRNG_BENCH_ONLY = a comma list of
// sections (adamw, mlp, matmul, transformer, optimizers, sizes). scripts/bench.mjs sets both from
// --adapter / --only. Asserts nothing about speed: targets are printed next to the figures.
import { test } from 'vitest';
import { createDevice, WebGpuDevice } from '../index.js';
import { installNavigatorGpu, PEER_ADAPTERS, type PeerAdapter } from './peers/navigator-gpu.js';
import { loadJax, loadTfjs } from './peers/peers.js';
import { torchTimings } from './peers/torch.js';
import { markdown, writeResults, type Section } from './report.js';
import { ADAMW_WORKLOADS, adamwSection, sizesOf } from './sections/adamw.js';
import type { BenchContext } from './sections/contenders.js';
import { MATMUL_SIZES, matmulName, matmulSection } from './sections/matmul.js';
import { MLP, MLP_STEP_NAME, mlpStepSection } from './sections/mlp-step.js';
import { sizeSweepSection, vitSizeSweepSection } from './sections/size-sweep.js';
import { optimizersSection } from './sections/optimizers.js';
import {
  ENCODER,
  ENCODER_NAME,
  transformerSection,
  VIT,
  VIT_STEP_NAME,
} from './sections/transformer.js';

// In this order: the optimizers section leaves a second device with large programs behind, and
// later WebGPU figures on llvmpipe ran ~30 % slower after it (matmul 512³ 12 vs 16 GFLOP/s).
// The transformer section (the encoder block against the peers, then the ViT's training steps on
// the shared device) goes before it for the same reason; it returns two tables.
const SECTIONS: Record<string, (ctx: BenchContext) => Promise<Section | Section[]>> = {
  adamw: adamwSection,
  mlp: mlpStepSection,
  matmul: matmulSection,
  transformer: transformerSection,
  optimizers: optimizersSection,
  sizes: sizeSweepSection,
  'vit-sizes': vitSizeSweepSection,
};
/** createDevice's backend for each adapter name (the peers get the same through navigator.gpu). */
const GRNG_BACKEND = { llvmpipe: 'opengles', swiftshader: 'swiftshader', gpu: 'vulkan' } as const;

test('npm run bench', async () => {
  const adapter = (process.env.GRNG_BENCH_ADAPTER ?? 'llvmpipe') as PeerAdapter;
  if (!(adapter in PEER_ADAPTERS))
    throw new Error(
      `the adapter must be one of ${Object.keys(PEER_ADAPTERS).join(', ')}, got "${adapter}"`,
    );
  const only = (process.env.GRNG_BENCH_ONLY ?? Object.keys(SECTIONS).join(','))
    .split(',')
    .map((s) => s.trim());
  const unknown = only.filter((s) => !(s in SECTIONS));
  if (unknown.length > 0)
    throw new Error(
      `unknown section(s) ${unknown.join(', ')}; choose from ${Object.keys(SECTIONS).join(', ')}`,
    );

  // PyTorch first, in its own process, while nothing else runs.
  const torch = await torchTimings({
    threads: 2,
    reps: 15,
    warmup: 3,
    adamw: only.includes('adamw')
      ? ADAMW_WORKLOADS.map((w) => ({ name: w.name, sizes: sizesOf(w.shapes) }))
      : [],
    matmul: only.includes('matmul') ? MATMUL_SIZES.map((k) => ({ name: matmulName(k), k })) : [],
    mlp: only.includes('mlp') ? [{ name: MLP_STEP_NAME, sizes: MLP.sizes, batch: MLP.batch }] : [],
    encoder: only.includes('transformer') ? [{ name: ENCODER_NAME, ...ENCODER }] : [],
    vit: only.includes('transformer') ? [{ name: VIT_STEP_NAME, ...VIT }] : [],
  });

  const openDevice = async () => {
    const device = await createDevice({ backend: GRNG_BACKEND[adapter] });
    if (!(device instanceof WebGpuDevice)) throw new Error('the benchmarks need a WebGPU device');
    return device;
  };
  const device = await openDevice();
  installNavigatorGpu(adapter);
  const ctx: BenchContext = {
    device,
    openDevice,
    backend: GRNG_BACKEND[adapter],
    done: () => device.gpu.queue.onSubmittedWorkDone(),
    tf: await loadTfjs(),
    jax: [await loadJax('webgpu'), await loadJax('wasm')],
    torch,
  };
  const sections: Section[] = [];
  for (const name of only) sections.push(...[await SECTIONS[name](ctx)].flat());

  const header = [
    `## grng benchmarks, ${new Date().toISOString().slice(0, 10)}`,
    '',
    `Adapter: ${device.description} (--adapter ${adapter}); every WebGPU ` +
      `library in this run uses it.`,
    `CPU references: plain JS on one ` +
      `thread${torch.ok ? `, PyTorch ${torch.version} with ${torch.threads} threads (BLAS: ${torch.blas})` : ` (PyTorch: ${torch.error})`}.`,
  ].join('\n');
  const text = markdown(sections, header);
  console.log(text);
  console.log(`written: ${writeResults(adapter, device.description, sections, text)}`);
  // An hour, not vitest.bench.config.ts's 10 minutes: on a CPU adapter the ViT's K-FAC and RING
  // steps alone compile for minutes.
}, 3_600_000);
