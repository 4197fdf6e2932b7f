#!/usr/bin/env node
// Installs dev dependencies on a clean clone so `npm test`, `npm run build` and
// `npm run demo` work as the first command anyone types. Runs as their pre-script,
// so the common case (deps already present and current) must cost only a stat and
// two small JSON reads. Node built-ins only: nothing else is installed yet.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const lockfile = join(root, 'package-lock.json');
// npm writes this "hidden lockfile" after every successful install; its absence means
// node_modules is missing or half-installed.
const installed = join(root, 'node_modules', '.package-lock.json');

function readPackages(file) {
  return JSON.parse(readFileSync(file, 'utf8')).packages ?? {};
}

// Why reinstall, or null when node_modules already matches package-lock.json.
// Comparing versions (not mtimes) keeps a fresh `git checkout` from forcing a reinstall,
// yet catches a lockfile that gained or bumped a dependency since the last install.
function staleReason() {
  if (!existsSync(installed)) return 'node_modules is missing or incomplete';
  if (!existsSync(lockfile)) return null; // npm ci needs the lockfile; nothing to compare.
  let wanted, have;
  try {
    wanted = readPackages(lockfile);
    have = readPackages(installed);
  } catch {
    return 'a lockfile could not be read';
  }
  for (const [path, entry] of Object.entries(wanted)) {
    // Optional entries are often other platforms' binaries that npm rightly skips.
    if (path === '' || entry.optional || entry.devOptional || entry.link) continue;
    if (have[path]?.version !== entry.version) {
      return `${path.replace(/^.*node_modules\//, '')}@${entry.version} is not installed`;
    }
  }
  return null;
}

const reason = staleReason();
if (reason === null) process.exit(0);

console.error(`grng: ${reason}; running \`npm ci\` in ${root} ...`);
if (!existsSync(lockfile)) {
  console.error(
    'grng: package-lock.json is missing, so `npm ci` cannot run. Restore ' +
      'it (git checkout package-lock.json) or run `npm install`.',
  );
  process.exit(1);
}

// Prefer the npm that launched us (npm_execpath) so the same npm version installs;
// fall back to `npm` on PATH when the script is run directly with node.
function npm(args) {
  const npmCli = process.env.npm_execpath;
  const options = { cwd: root, stdio: 'inherit' };
  return npmCli !== undefined && /npm-cli\.js$/.test(npmCli)
    ? spawnSync(process.execPath, [npmCli, ...args], options)
    : spawnSync('npm', args, { ...options, shell: process.platform === 'win32' });
}

const failure = (r) =>
  r.error ? r.error.message : r.status !== 0 ? `exit status ${r.status ?? r.signal}` : null;

// vite is pinned below 8.4 (package.json overrides): 8.4 lists an optional dependency the
// registry does not serve, which makes `npm ci` reject the lockfile.
const ci = npm(['ci', '--no-audit', '--no-fund']);
if (failure(ci) !== null) {
  console.error(
    `grng: \`npm ci\` failed (${failure(ci)}). Check access to the npm ` +
      `registry, then run \`npm ci\` in ${root} yourself.`,
  );
  process.exit(1);
}
