// The package as a user gets it: `npm run build` must emit dist/, and `import ... from 'grng'`
// (resolved through package.json "exports", exactly as for an installed dependency) must
// expose the public API. It builds for itself in beforeAll, since the build wipes dist/
// first, no earlier run's output can make it pass. No other test reads dist/.
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { beforeAll, describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BUILD_TIMEOUT_MS = 240_000;

function run(command: string, args: readonly string[], timeout = 60_000): SpawnSyncReturns<string> {
  return spawnSync(command, args, {
    cwd: root,
    encoding: 'utf8',
    timeout,
    shell: process.platform === 'win32', // npm is npm.cmd there
  });
}

function describeFailure(what: string, r: SpawnSyncReturns<string>): string {
  const tail = `${r.stdout ?? ''}\n${r.stderr ?? ''}`.trim().slice(-4000);
  const why = r.error ? r.error.message : `exit status ${r.status ?? r.signal}`;
  return `${what} failed (${why}):\n${tail}`;
}

// Runs a snippet as an ES module in the repo root, where `grng` resolves to this package
// by self-reference; the snippet prints one JSON line that the test parses.
function importReport(snippet: string): unknown {
  const r = run(process.execPath, ['--input-type=module', '-e', snippet]);
  if (r.status !== 0) throw new Error(describeFailure('node -e import', r));
  return JSON.parse(r.stdout.trim());
}

const packageVersion = (): string => {
  const pkg: { version: string } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  return pkg.version;
};

describe('built package', () => {
  beforeAll(() => {
    const r = run('npm', ['run', 'build'], BUILD_TIMEOUT_MS);
    if (r.status !== 0) throw new Error(describeFailure('npm run build', r));
  }, BUILD_TIMEOUT_MS + 30_000);

  it('emits type declarations', () => {
    expect(existsSync(join(root, 'dist', 'index.d.ts'))).toBe(true);
  });

  it("resolves import('grng') and exposes the public API", () => {
    const report = importReport(`
      const m = await import('grng');
      const kinds = {};
      for (const name of ['grad', 'jit', 'createDevice', 'array', 'GrngError']) kinds[name] = typeof m[name];
      const E = m.GrngError;
      const isClass = typeof E === 'function' && /^class\\b/.test(Function.prototype.toString.call(E));
      const isError = typeof E === 'function' && E.prototype instanceof Error;
      console.log(JSON.stringify({ kinds, isClass, isError }));
    `);
    expect(report).toEqual({
      kinds: {
        grad: 'function',
        jit: 'function',
        createDevice: 'function',
        array: 'function',
        GrngError: 'function',
      },
      isClass: true,
      isError: true,
    });
  });

  it("resolves import('grng/testing')", () => {
    expect(existsSync(join(root, 'dist', 'testing.d.ts'))).toBe(true);
    const report = importReport(`
      const m = await import('grng/testing');
      console.log(JSON.stringify({ checkGradient: typeof m.checkGradient }));
    `);
    expect(report).toEqual({ checkGradient: 'function' });
  });

  it.each(['grng', 'grng/testing', 'grng/aot'])(
    'bundles %s for browsers with esbuild, with no Node module in it',
    async (entry) => {
      // package.json "browser" swaps the Dawn adapter and system-package probes (Node's
      // child_process, fs, os, path, url) for runtime/gpu/node-only.browser.js.
      const result = await build({
        stdin: { contents: `export * from '${entry}';`, resolveDir: root },
        bundle: true,
        platform: 'browser',
        format: 'esm',
        minify: true,
        write: false,
        metafile: true,
        logLevel: 'silent',
      });
      expect(result.errors).toEqual([]);
      const inputs = Object.keys(result.metafile.inputs);
      expect(inputs.filter((f) => /dawn-adapters|system-packages|^node:/.test(f))).toEqual([]);
      const imports = Object.values(result.metafile.outputs).flatMap((o) => o.imports);
      expect(imports.map((i) => i.path)).toEqual([]);
      if (entry === 'grng')
        expect(inputs.some((f) => f.endsWith('runtime/gpu/node-only.browser.js'))).toBe(true);
    },
  );

  it('ships a grng bin that prints the package version', () => {
    const main = join(root, 'dist', 'cli', 'main.js');
    expect(readFileSync(main, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
    const r = run(process.execPath, [main, '--version']);
    expect(r.status, describeFailure('grng --version', r)).toBe(0);
    expect(r.stdout.trim()).toBe(packageVersion());
  });

  it('rejects an unknown command with usage on stderr and exit code 2', () => {
    const r = run(process.execPath, [join(root, 'dist', 'cli', 'main.js'), 'no-such-command']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('Usage: grng');
    expect(r.stdout).toBe('');
  });
});
