#!/usr/bin/env node
// Installs the Debian packages behind grng's two software WebGPU paths (Mesa llvmpipe and
// SwiftShader; see DESIGN.md) so `npm test` works on a machine without a GPU. Runs as a
// pre-script, so when everything is present it costs one dpkg-query. Node built-ins only:
// it runs before TypeScript or any dependency is usable. The package lists live in
// runtime/gpu/webgpu-packages.json, which the library's error messages read too.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const paths = JSON.parse(readFileSync(join(root, 'runtime', 'gpu', 'webgpu-packages.json'), 'utf8'));
const log = (line) => console.error(`grng setup-webgpu: ${line}`);

// macOS and Windows have native WebGPU backends and no apt; nothing to do there.
if (process.platform !== 'linux' || process.env.GRNG_SKIP_WEBGPU_SETUP === '1') process.exit(0);

const wanted = [...new Set(Object.values(paths).flatMap((p) => p.packages))];

// One dpkg-query for all packages: it lists the known ones on stdout (and exits 1 when some
// are unknown), so a package is present only when its status reads "install ok installed".
function missingPackages() {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Package} ${Status}\\n', ...wanted], { encoding: 'utf8' });
  if (r.error) return null; // no dpkg: not a Debian-family system
  const installed = new Set(r.stdout.split('\n')
    .filter((line) => line.endsWith(' install ok installed'))
    .map((line) => line.split(' ')[0].replace(/:.*$/, ''))); // drop ":amd64" arch qualifiers
  return wanted.filter((p) => !installed.has(p));
}

function isDebianFamily() {
  try {
    const release = readFileSync('/etc/os-release', 'utf8');
    return /^(ID|ID_LIKE)=.*\b(debian|ubuntu)\b/m.test(release);
  } catch {
    return false;
  }
}

const missing = missingPackages();
if (missing === null) {
  log('no dpkg here; software WebGPU needs Mesa EGL + GLES with llvmpipe, or a Vulkan loader with SwiftShader. Skipping.');
  process.exit(0);
}
if (missing.length === 0) process.exit(0);

const command = `apt-get install -y --no-install-recommends ${missing.join(' ')}`;
if (process.getuid?.() !== 0 || !isDebianFamily()) {
  log(`missing Debian packages for software WebGPU: ${missing.join(' ')}.`);
  log(`install them with: sudo apt-get update && sudo ${command}`);
  log('continuing; tests that need a WebGPU adapter will fail until an adapter is available.');
  process.exit(0);
}

// apt's own output is long; keep it and show it only when a step fails.
function step(label, args) {
  const started = Date.now();
  log(`${label} ...`);
  const r = spawnSync('apt-get', args, {
    encoding: 'utf8',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    maxBuffer: 64 * 1024 * 1024,
  });
  const failed = r.error ? r.error.message : r.status !== 0 ? `exit status ${r.status ?? r.signal}` : null;
  if (failed !== null) {
    console.error(`${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n').slice(-30).join('\n'));
    log(`${label} failed (${failed}); continuing without those packages. Run \`apt-get update && ${command}\` yourself.`);
    process.exit(0);
  }
  log(`${label} done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

step('apt-get update', ['update']);
// --no-install-recommends keeps chromium to a couple of dozen packages instead of ~140;
// SwiftShader's Vulkan ICD ships in chromium itself, so nothing recommended is needed.
step(`installing ${missing.join(' ')}`, ['install', '-y', '--no-install-recommends', ...missing]);

const icd = paths.swiftshader.icd;
if (missing.includes('chromium') && !existsSync(icd)) {
  log(`chromium is installed but ${icd} is absent; the SwiftShader path will be unavailable.`);
}
