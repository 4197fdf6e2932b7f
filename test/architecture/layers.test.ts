// The layer rules of docs/architecture.md (.dependency-cruiser.cjs) hold for the repository, and
// they do fire: a scratch tree with upward imports is rejected rule by rule.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const depcruise = join(root, 'node_modules', '.bin', 'depcruise');
const CONFIG = '.dependency-cruiser.cjs';

function cruise(cwd: string, paths: readonly string[]): { status: number | null; output: string } {
  const run = spawnSync(depcruise, ['--config', CONFIG, '--output-type', 'err', ...paths], {
    cwd,
    encoding: 'utf8',
  });
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

describe('layers', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'grng-layers-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  test('the repository follows the layer rules', () => {
    const layers = ['index.ts', 'testing.ts', 'core', 'dsl', 'compiler', 'runtime', 'optimizers'];
    const { status, output } = cruise(root, [...layers, 'aot', 'testing', 'cli', 'examples']);
    expect(output).toContain('no dependency violations');
    expect(status).toBe(0);
  });

  test('upward imports and unresolved imports are rejected', () => {
    const files: Record<string, string> = {
      'core/ir.ts': "import { t } from '../dsl/tensor.js';\nexport const ir = t;\n",
      'dsl/tensor.ts': "import { run } from '../runtime/run.js';\nexport const t = run;\n",
      'runtime/run.ts': "import { adam } from '../optimizers/adam.js';\nexport const run = adam;\n",
      'optimizers/adam.ts':
        "import { plan } from '../compiler/plan.js';\nexport const adam = plan;\n",
      'compiler/plan.ts': "import { gone } from './missing.js';\nexport const plan = gone;\n",
    };
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(join(scratch, dirname(path)), { recursive: true });
      writeFileSync(join(scratch, path), text);
    }
    writeFileSync(
      join(scratch, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext' } }),
    );
    copyFileSync(join(root, CONFIG), join(scratch, CONFIG));
    const { status, output } = cruise(scratch, [
      'core',
      'dsl',
      'runtime',
      'optimizers',
      'compiler',
    ]);
    expect(status).not.toBe(0);
    for (const rule of [
      'core-imports-nothing-above: core/ir.ts → dsl/tensor.ts',
      'dsl-imports-core-only: dsl/tensor.ts → runtime/run.ts',
      'runtime-below-optimizers: runtime/run.ts → optimizers/adam.ts',
      'optimizers-import-dsl-only: optimizers/adam.ts → compiler/plan.ts',
      'no-unresolved: compiler/plan.ts → ./missing.js',
    ]) {
      expect(output).toContain(rule);
    }
  });
});
