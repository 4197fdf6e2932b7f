// Installs missing Debian packages when running as root on Debian/Ubuntu; otherwise says what to
// install. Shared by the setup scripts (Node built-ins only: it runs before any dependency exists).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** The wanted packages that are not installed, or null when there is no dpkg. */
function missingPackages(wanted) {
  // One dpkg-query for all: a package is present only when its status reads "install ok installed".
  const r = spawnSync('dpkg-query', ['-W', '-f=${Package} ${Status}\\n', ...wanted], {
    encoding: 'utf8',
  });
  if (r.error) return null;
  const installed = new Set(
    r.stdout
      .split('\n')
      .filter((line) => line.endsWith(' install ok installed'))
      .map((line) => line.split(' ')[0].replace(/:.*$/, '')),
  ); // drop ":amd64" arch qualifiers
  return wanted.filter((p) => !installed.has(p));
}

function isDebianFamily() {
  try {
    return /^(ID|ID_LIKE)=.*\b(debian|ubuntu)\b/m.test(readFileSync('/etc/os-release', 'utf8'));
  } catch {
    return false;
  }
}

/**
 * Makes sure `wanted` are installed. Returns the packages it installed ([] when nothing was
 * missing); never fails the caller: problems are reported through `log` with the command to run.
 */
export function ensureDebianPackages(wanted, { log, purpose }) {
  const missing = missingPackages(wanted);
  if (missing === null) {
    log(`no dpkg here; ${purpose} needs: ${wanted.join(' ')}. Skipping.`);
    return [];
  }
  if (missing.length === 0) return [];
  const command = `apt-get install -y --no-install-recommends ${missing.join(' ')}`;
  if (process.getuid?.() !== 0 || !isDebianFamily()) {
    log(`missing Debian packages for ${purpose}: ${missing.join(' ')}.`);
    log(`install them with: sudo apt-get update && sudo ${command}`);
    return [];
  }
  // apt's own output is long; keep it and show it only when a step fails.
  const step = (label, args) => {
    const started = Date.now();
    log(`${label} ...`);
    const r = spawnSync('apt-get', args, {
      encoding: 'utf8',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      maxBuffer: 64 * 1024 * 1024,
    });
    const failed = r.error
      ? r.error.message
      : r.status !== 0
        ? `exit status ${r.status ?? r.signal}`
        : null;
    if (failed !== null) {
      console.error(`${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n').slice(-30).join('\n'));
      log(
        `${label} failed (${failed}); continuing without those packages. Run ` +
          `\`apt-get update && ${command}\` yourself.`,
      );
      return false;
    }
    log(`${label} done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return true;
  };
  // --no-install-recommends keeps e.g. chromium to a couple of dozen packages instead of ~140.
  if (!step('apt-get update', ['update'])) return [];
  return step(`installing ${missing.join(' ')}`, [
    'install',
    '-y',
    '--no-install-recommends',
    ...missing,
  ])
    ? missing
    : [];
}
