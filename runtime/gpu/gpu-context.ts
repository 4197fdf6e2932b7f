// Turns an adapter into grng's GPU context: a device with the adapter's maximum limits and
// the features grng's kernels can use. Shared by the Dawn (Node) and browser openers.

export type FeatureLevel = 'core' | 'compatibility';

/**
 * Which route produced the adapter: a real GPU, Dawn's Vulkan or OpenGL ES backend (llvmpipe),
 * SwiftShader, or a browser.
 */
export type GpuPath = 'native' | 'vulkan' | 'opengles' | 'swiftshader' | 'browser';

export interface GpuContext {
  readonly device: GPUDevice;
  readonly adapter: GPUAdapter;
  /** The Dawn backend used ('vulkan', 'opengles', 'metal', 'd3d12'), or 'browser'. */
  readonly backend: string;
  readonly path: GpuPath;
  readonly featureLevel: FeatureLevel;
  /** Vendor, architecture, device and driver description, for people to read. */
  readonly adapterName: string;
  /** The device's limits (equal to the adapter's: they are all requested). */
  readonly limits: GPUSupportedLimits;
  readonly features: readonly string[];
  /**
   * Dawn's instance (the object `create()` returned); null in browsers. It must outlive the
   * adapter and device: when it was collected first, Node crashed or hung at exit (seen with
   * webgpu 0.6.2), so the context holds it, and so do the adapter and device (see tieToInstance).
   */
  readonly instance: GPU | null;
  destroy(): void;
}

// Features grng's kernels or benchmarks use. Others (texture formats, blending) buy nothing
// for compute and only widen what a device must validate.
const USEFUL_FEATURES: readonly GPUFeatureName[] = ['timestamp-query', 'shader-f16', 'subgroups'];

/** Every numeric limit the adapter reports, to request as the device's limits. */
export function maxLimits(adapter: GPUAdapter): Record<string, number> {
  const limits: Record<string, number> = {};
  // Limits are WebIDL attributes (prototype getters), so for-in finds them; keys cannot.
  for (const name in adapter.limits) {
    const value: unknown = Reflect.get(adapter.limits, name);
    if (typeof value === 'number') limits[name] = value;
  }
  return limits;
}

export function adapterName(info: GPUAdapterInfo): string {
  const parts = [info.vendor, info.architecture, info.device].filter((s) => s !== '');
  const ids = parts.length > 0 ? ` (${parts.join(', ')})` : '';
  return `${info.description !== '' ? info.description : 'unnamed adapter'}${ids}`;
}

export interface OpenedAdapter {
  readonly adapter: GPUAdapter;
  readonly backend: string;
  readonly path: GpuPath;
  readonly instance: GPU | null;
}

// Ties a Dawn instance to the adapters and devices it made, so code that keeps only
// `ctx.device` (or an adapter) still keeps the instance alive; weak, so dropping them frees it.
const keepAlive = new WeakMap<GPUAdapter | GPUDevice, GPU>();

export function tieToInstance(owned: GPUAdapter | GPUDevice, instance: GPU): void {
  keepAlive.set(owned, instance);
}

/**
 * Requests the device. A compatibility-level request leaves 'core-features-and-limits' off
 * so validation matches a compatibility-only adapter even on one that could do core.
 */
export async function openContext(
  opened: OpenedAdapter,
  featureLevel: FeatureLevel | undefined,
): Promise<GpuContext> {
  const { adapter } = opened;
  const wanted: GPUFeatureName[] = [...USEFUL_FEATURES];
  if (featureLevel !== 'compatibility') wanted.push('core-features-and-limits');
  const requiredFeatures = wanted.filter((f) => adapter.features.has(f));
  const device = await adapter.requestDevice({
    requiredFeatures,
    requiredLimits: maxLimits(adapter),
  });
  if (opened.instance !== null) tieToInstance(device, opened.instance);
  return {
    device,
    adapter,
    backend: opened.backend,
    path: opened.path,
    featureLevel: device.features.has('core-features-and-limits') ? 'core' : 'compatibility',
    adapterName: adapterName(adapter.info),
    limits: device.limits,
    features: [...device.features].sort(),
    instance: opened.instance,
    destroy() {
      device.destroy();
    },
  };
}
