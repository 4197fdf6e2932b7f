// Headless Debian Chromium with WebGPU on this machine's software adapters (docs/architecture.md,
// "WebGPU adapters"). playwright-core drives it; no browser is ever downloaded.
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

// Checked headless with Chromium 156 on Debian 12 (no GPU):
// - --enable-unsafe-webgpu: navigator.gpu exists on Linux only with it.
// - --use-webgpu-adapter=opengles: adds Dawn's OpenGL ES backend, which answers
//   { featureLevel: 'compatibility' }; without it every request gets SwiftShader (Vulkan, core).
// - --use-angle=gles-egl: makes that GL ES backend Mesa llvmpipe through EGL; without it ANGLE
//   runs GL ES on SwiftShader's Vulkan, so both "adapters" would be SwiftShader.
// - --enable-webgpu-developer-features: otherwise Chromium masks GPUAdapterInfo (the
//   compatibility adapter reports no vendor, architecture or description at all), and the
//   device description could not say which adapter the page got.
export const WEBGPU_FLAGS: readonly string[] = [
  '--enable-unsafe-webgpu',
  '--use-webgpu-adapter=opengles',
  '--use-angle=gles-egl',
  '--enable-webgpu-developer-features',
];

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...WEBGPU_FLAGS] });
}
