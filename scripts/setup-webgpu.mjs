#!/usr/bin/env node
// Installs the Debian packages behind grng's two software WebGPU paths (Mesa llvmpipe and
// SwiftShader; see docs/architecture.md, WebGPU adapters) so `npm test` works on a machine without
// a GPU. Runs as a pre-script, so when everything is present it costs one dpkg-query. The package
// lists live in runtime/gpu/webgpu-packages.json, which the library's error messages read too.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureDebianPackages } from './apt.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const paths = JSON.parse(
  readFileSync(join(root, 'runtime', 'gpu', 'webgpu-packages.json'), 'utf8'),
);
const log = (line) => console.error(`grng setup-webgpu: ${line}`);

// macOS and Windows have native WebGPU backends and no apt; nothing to do there.
if (process.platform !== 'linux' || process.env.GRNG_SKIP_WEBGPU_SETUP === '1') process.exit(0);

const wanted = [...new Set(Object.values(paths).flatMap((p) => p.packages))];
const installed = ensureDebianPackages(wanted, {
  log,
  purpose: 'software WebGPU (tests that need an adapter fail without it)',
});

// SwiftShader's Vulkan ICD ships in chromium itself.
const icd = paths.swiftshader.icd;
if (installed.includes('chromium') && !existsSync(icd)) {
  log(`chromium is installed but ${icd} is absent; the SwiftShader path will be unavailable.`);
}
