// Which Debian packages each software WebGPU path needs, whether they are installed, and the
// message that tells a user what to install when no adapter came up. The lists come from
// webgpu-packages.json, which scripts/setup-webgpu.mjs reads too, so they cannot drift.
import { spawnSync } from 'node:child_process';
import paths from './webgpu-packages.json' with { type: 'json' };

export interface SoftwarePath {
  readonly label: string;
  readonly packages: readonly string[];
}

export const SOFTWARE_PATHS: Readonly<Record<'llvmpipe' | 'swiftshader', SoftwarePath>> = paths;
export const SWIFTSHADER_ICD: string = paths.swiftshader.icd;

/** Returns the installed subset of `packages`, or null when it cannot tell (no dpkg). */
export type PackageChecker = (packages: readonly string[]) => ReadonlySet<string> | null;

/** dpkg's view: one query for all packages; unknown ones are simply not listed. */
export const dpkgInstalled: PackageChecker = (packages) => {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Package} ${Status}\\n', ...packages], {
    encoding: 'utf8',
  });
  if (r.error !== undefined) return null;
  return new Set(
    r.stdout
      .split('\n')
      .filter((line) => line.endsWith(' install ok installed'))
      .map((line) => (line.split(' ')[0] ?? '').replace(/:.*$/, '')),
  ); // "pkg:amd64" → "pkg"
};

// The name under which each software path shows up in the attempts (openGpu's backend names).
const ATTEMPT_NAME: Readonly<Record<string, string>> = {
  llvmpipe: 'opengles',
  swiftshader: 'swiftshader',
};

/** One failed way of getting an adapter, and why. */
export interface Attempt {
  readonly path: string;
  readonly reason: string;
}

/** The text of the error thrown when no adapter could be opened. */
export function noAdapterMessage(
  attempts: readonly Attempt[],
  installed: PackageChecker = dpkgInstalled,
): string {
  const tried = attempts.map((a) => `  - ${a.path}: ${a.reason}`).join('\n');
  const lines = [`no WebGPU adapter could be opened. Tried:\n${tried}`];
  const all = Object.values(SOFTWARE_PATHS).flatMap((p) => p.packages);
  const have = installed(all);
  if (have === null) {
    lines.push(
      'Could not check system packages (no dpkg-query). Without a GPU, grng needs one of:',
    );
    for (const p of Object.values(SOFTWARE_PATHS))
      lines.push(`  - ${p.label}: the equivalents of Debian's ${p.packages.join(' ')}`);
    return lines.join('\n');
  }
  const missing: string[] = [];
  lines.push('Software WebGPU paths (for machines without a usable GPU):');
  for (const [key, p] of Object.entries(SOFTWARE_PATHS)) {
    const lacking = p.packages.filter((name) => !have.has(name));
    missing.push(...lacking);
    const tried = attempts.some((a) => a.path === ATTEMPT_NAME[key]);
    lines.push(
      lacking.length > 0
        ? `  - ${p.label}: needs the Debian packages ${p.packages.join(' ')}; ` +
            `missing: ${lacking.join(' ')}.`
        : `  - ${p.label}: its packages (${p.packages.join(' ')}) are ` +
            `installed${tried ? ', yet it gave no adapter (see above)' : ''}.`,
    );
  }
  if (missing.length > 0) {
    lines.push(
      `Install the missing ones (as root): apt-get update && apt-get install ` +
        `-y --no-install-recommends ${missing.join(' ')}`,
    );
    lines.push(
      'or run `node scripts/setup-webgpu.mjs` as root in a grng checkout ' +
        '(npm test does this for you).',
    );
  }
  return lines.join('\n');
}
