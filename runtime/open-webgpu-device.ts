// TEMPORARY opener until runtime/gpu/open-gpu.ts lands: Dawn's OpenGL ES backend on llvmpipe.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebGpuDevice } from './webgpu-device.js';

export async function openWebGpuDevice(): Promise<WebGpuDevice> {
  process.env.EGL_PLATFORM ??= 'surfaceless';
  process.env.XDG_RUNTIME_DIR ??= mkdtempSync(join(tmpdir(), 'grng-xdg-'));
  const { create, globals } = await import('webgpu');
  Object.assign(globalThis, globals);
  const gpu = create(['backend=opengles']);
  const adapter = await gpu.requestAdapter({ featureLevel: 'compatibility' });
  if (adapter === null) throw new Error('no adapter');
  const limits: Record<string, number> = {};
  for (const k in adapter.limits) {
    const v = (adapter.limits as unknown as Record<string, unknown>)[k];
    if (typeof v === 'number') limits[k] = v;
  }
  const device = await adapter.requestDevice({ requiredLimits: limits });
  return new WebGpuDevice({ device, description: 'llvmpipe', owner: gpu });
}
