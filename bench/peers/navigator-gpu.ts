// The peers (TensorFlow.js, jax-js) find WebGPU through navigator.gpu, as in a browser. In Node
// we give them Dawn's instance for the adapter grng benchmarks on (same backend, same feature
// level), so every library in a run shares one adapter kind. Only for the benchmarks.
import { create, globals } from 'webgpu';

/** Which Dawn backend and feature level an adapter name means (GRNG_BENCH_ADAPTER). */
export const PEER_ADAPTERS = {
  llvmpipe: { backend: 'opengles', featureLevel: 'compatibility' },
  swiftshader: { backend: 'vulkan', featureLevel: 'core' },
  gpu: { backend: 'vulkan', featureLevel: 'core' },
} as const;

export type PeerAdapter = keyof typeof PEER_ADAPTERS;

/**
 * Installs navigator.gpu (and a userAgent, which jax-js reads) over a Dawn instance of `adapter`'s
 * backend.
 */
export function installNavigatorGpu(adapter: PeerAdapter): void {
  const { backend, featureLevel } = PEER_ADAPTERS[adapter];
  Object.assign(globalThis, globals);
  process.env.EGL_PLATFORM ??= 'surfaceless';
  const instance = create([`backend=${backend}`]);
  const gpu = {
    // TF.js asks for a high-performance core adapter; the software GL path only offers
    // compatibility.
    requestAdapter: (options: GPURequestAdapterOptions = {}) =>
      instance.requestAdapter({ ...options, featureLevel }),
    getPreferredCanvasFormat: () => 'rgba8unorm',
    wgslLanguageFeatures: new Set<string>(),
  };
  Object.defineProperty(globalThis, 'navigator', {
    value: { gpu, userAgent: 'Node.js (grng bench)' },
    configurable: true,
  });
}
