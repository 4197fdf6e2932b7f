// Opens a WebGPU device: in browsers through navigator.gpu, in Node through Dawn, falling back from
// a real GPU to the software adapters (docs/architecture.md, WebGPU adapters). Every call gives a
// fresh device.
import { GrngError } from '../../core/errors.js';
import {
  openContext,
  type FeatureLevel,
  type GpuContext,
  type OpenedAdapter,
} from './gpu-context.js';
import type { Attempt } from './system-packages.js';
import type { DawnPath } from './dawn-adapters.js';

export type { FeatureLevel, GpuContext, GpuPath } from './gpu-context.js';

export interface OpenGpuOptions {
  /**
   * 'auto' (default): a real GPU, else Mesa llvmpipe (OpenGL ES), else SwiftShader (Vulkan).
   * 'native': only a real GPU through the platform's primary Dawn backend.
   * 'vulkan' / 'opengles': that Dawn backend, whatever adapter it finds.
   * 'swiftshader': SwiftShader through Dawn's Vulkan backend.
   * Ignored in browsers, where the browser picks the backend.
   */
  readonly backend?: 'auto' | DawnPath;
  /** Require this feature level; by default core when the adapter offers it. */
  readonly featureLevel?: FeatureLevel;
}

const BACKENDS: readonly string[] = ['auto', 'native', 'vulkan', 'opengles', 'swiftshader'];

export async function openGpu(options: OpenGpuOptions = {}): Promise<GpuContext> {
  const backend = options.backend ?? 'auto';
  const { featureLevel } = options;
  if (!BACKENDS.includes(backend)) {
    throw new GrngError(
      'createDevice',
      `unknown backend '${String(backend)}'; use one of ${BACKENDS.join(', ')}`,
    );
  }
  if (featureLevel !== undefined && featureLevel !== 'core' && featureLevel !== 'compatibility') {
    throw new GrngError(
      'createDevice',
      `featureLevel must be 'core' or 'compatibility', got ${String(featureLevel)}`,
    );
  }
  const browserGpu: GPU | undefined = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  if (browserGpu !== undefined) return openBrowser(browserGpu, featureLevel);

  const { autoOrder, openDawnAdapter } = await import('./dawn-adapters.js');
  const attempts: Attempt[] = [];
  for (const path of backend === 'auto' ? autoOrder(featureLevel) : [backend]) {
    const r = await openDawnAdapter(path, featureLevel);
    if ('reason' in r) {
      attempts.push(r);
      continue;
    }
    try {
      return await openContext(r, featureLevel);
    } catch (e) {
      attempts.push({
        path,
        reason: `requestDevice failed: ${e instanceof Error ? e.message : String(e)}`,
      });
    }
  }
  const { noAdapterMessage } = await import('./system-packages.js');
  throw new GrngError('createDevice', noAdapterMessage(attempts));
}

// The browser chooses the backend; ask for a high-performance core adapter, then for any
// adapter at the compatibility level (e.g. Chromium's llvmpipe path).
async function openBrowser(gpu: GPU, featureLevel: FeatureLevel | undefined): Promise<GpuContext> {
  const tries: GPURequestAdapterOptions[] =
    featureLevel === 'compatibility'
      ? [{ featureLevel: 'compatibility' }]
      : [{ featureLevel: 'core', powerPreference: 'high-performance' }];
  if (featureLevel === undefined) tries.push({ featureLevel: 'compatibility' });
  for (const request of tries) {
    const adapter = await gpu.requestAdapter(request);
    if (adapter === null) continue;
    const opened: OpenedAdapter = { adapter, backend: 'browser', path: 'browser', instance: null };
    return openContext(opened, featureLevel);
  }
  throw new GrngError(
    'createDevice',
    `navigator.gpu gave no ` +
      `adapter${featureLevel !== undefined ? ` at the ${featureLevel} feature level` : ''}. ` +
      'Use a browser with WebGPU enabled (Chromium: --enable-unsafe-webgpu; ' +
      'headless flags: docs/architecture.md in grng, WebGPU adapters).',
  );
}
