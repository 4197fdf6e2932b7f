// The ways to get an adapter from Dawn in Node (the npm package `webgpu`), one function per
// path. Each returns the adapter with the Dawn instance that owns it, or why it failed.
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tieToInstance, type FeatureLevel, type OpenedAdapter } from './gpu-context.js';
import { SWIFTSHADER_ICD, type Attempt } from './system-packages.js';

export type DawnPath = 'native' | 'vulkan' | 'opengles' | 'swiftshader';

type Create = (options: string[]) => GPU;

// Imported on first use so that browser bundles never need the native module.
async function dawn(): Promise<Create> {
  const { create, globals } = await import('webgpu');
  // Code written against WebGPU uses GPUBufferUsage, GPUMapMode, ... as globals; Dawn only
  // exports them. Add the missing ones and never replace what is already there.
  for (const [name, value] of Object.entries(globals)) {
    if (!(name in globalThis)) Reflect.set(globalThis, name, value);
  }
  return create;
}

function nativeBackend(): string {
  if (process.platform === 'darwin') return 'metal';
  if (process.platform === 'win32') return 'd3d12';
  return 'vulkan';
}

// Sets environment variables for the duration of `body` and restores them afterwards. The
// Vulkan loader reads VK_ICD_FILENAMES when Dawn enumerates adapters (in requestAdapter), and
// a device keeps working after it is restored; restoring keeps SwiftShader from posing as
// the "native" GPU in later attempts in the same process.
async function withEnv<T>(vars: Record<string, string>, body: () => Promise<T>): Promise<T> {
  const saved = Object.keys(vars).map((k) => [k, process.env[k]] as const);
  Object.assign(process.env, vars);
  try {
    return await body();
  } finally {
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

let privateRuntimeDir: string | undefined;

// Mesa's EGL needs a platform without a display server and a writable XDG_RUNTIME_DIR; set
// both only when the user has not. They stay set: the GL context lives as long as the device.
function prepareSurfacelessEgl(): void {
  process.env.EGL_PLATFORM ??= 'surfaceless';
  if (process.env.XDG_RUNTIME_DIR === undefined) {
    privateRuntimeDir ??= mkdtempSync(join(tmpdir(), 'grng-xdg-')); // mkdtemp makes it 0700
    process.env.XDG_RUNTIME_DIR = privateRuntimeDir;
  }
}

async function request(
  backend: string,
  path: DawnPath,
  options: GPURequestAdapterOptions,
): Promise<OpenedAdapter | Attempt> {
  const create = await dawn();
  const instance = create([`backend=${backend}`]);
  const adapter = await instance.requestAdapter(options);
  if (adapter === null)
    return {
      path,
      reason:
        `Dawn's ${backend} backend offered no ` +
        `adapter${options.featureLevel === 'core' ? ' at the core feature level' : ''}`,
    };
  tieToInstance(adapter, instance);
  return { adapter, backend, path, instance };
}

const HINT = {
  vulkan: 'is the Vulkan loader (Debian: libvulkan1) and a driver installed?',
  swiftshader: 'is libvulkan1 installed? (Dawn prints "Couldn\'t load Vulkan" when it is not)',
  opengles:
    'are Mesa EGL, GLES and the DRI drivers (libegl1 libegl-mesa0 libgles2 ' +
    'libgl1-mesa-dri) installed?',
};

async function openPath(
  path: DawnPath,
  featureLevel: FeatureLevel | undefined,
): Promise<OpenedAdapter | Attempt> {
  switch (path) {
    case 'native': {
      const r = await request(nativeBackend(), path, {
        featureLevel: featureLevel ?? 'core',
        powerPreference: 'high-performance',
      });
      // A CPU implementation found by the native backend is not the GPU this path promises;
      // the software paths below pick the better one deliberately.
      if ('adapter' in r && r.adapter.info.isFallbackAdapter) {
        return {
          path,
          reason: `only a software adapter was found (${r.adapter.info.description})`,
        };
      }
      return r;
    }
    case 'vulkan': {
      const r = await request('vulkan', path, { featureLevel: featureLevel ?? 'core' });
      return 'reason' in r ? { path, reason: `${r.reason}; ${HINT.vulkan}` } : r;
    }
    case 'swiftshader': {
      // A user who points the Vulkan loader at a driver themselves keeps that choice.
      const userChoice =
        process.env.VK_ICD_FILENAMES !== undefined || process.env.VK_DRIVER_FILES !== undefined;
      if (!userChoice && !existsSync(SWIFTSHADER_ICD)) {
        return {
          path,
          reason: `${SWIFTSHADER_ICD} not found (it ships in the Debian package chromium)`,
        };
      }
      const open = (): Promise<OpenedAdapter | Attempt> =>
        request('vulkan', path, { featureLevel: featureLevel ?? 'core' });
      const r = userChoice
        ? await open()
        : await withEnv({ VK_ICD_FILENAMES: SWIFTSHADER_ICD }, open);
      return 'reason' in r ? { path, reason: `${r.reason}; ${HINT.swiftshader}` } : r;
    }
    case 'opengles': {
      if (featureLevel === 'core')
        return {
          path,
          reason: "Dawn's OpenGL ES backend offers only the compatibility feature level",
        };
      prepareSurfacelessEgl();
      const r = await request('opengles', path, { featureLevel: 'compatibility' });
      return 'reason' in r ? { path, reason: `${r.reason}; ${HINT.opengles}` } : r;
    }
  }
}

/** Tries one path; Dawn's exceptions become reasons, so callers can move on to the next. */
export async function openDawnAdapter(
  path: DawnPath,
  featureLevel: FeatureLevel | undefined,
): Promise<OpenedAdapter | Attempt> {
  try {
    return await openPath(path, featureLevel);
  } catch (e) {
    return { path, reason: e instanceof Error ? e.message : String(e) };
  }
}

/**
 * The order 'auto' tries. A real GPU first. Among the software paths llvmpipe (OpenGL ES) comes
 * before SwiftShader because it runs grng's kernels about 3× faster (docs/architecture.md, WebGPU
 * adapters), but it only offers the compatibility feature level: when core is required, SwiftShader
 * is the only software path that can give it.
 */
export function autoOrder(featureLevel: FeatureLevel | undefined): readonly DawnPath[] {
  return featureLevel === 'core'
    ? ['native', 'swiftshader']
    : ['native', 'opengles', 'swiftshader'];
}
