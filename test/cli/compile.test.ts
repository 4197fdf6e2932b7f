// `grng compile` through its entry function: a clean file compiles to WGSL files, a manifest and a
// typed module whose plans step exactly as compileOptimizer does; a file with purity violations
// prints them compiler-style and compiles nothing; bad options are one-line errors.
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { compile } from '../../aot/compile-command.js';
import { adabelief } from '../../examples/custom-optimizer/adabelief.js';
import { array, compileOptimizer, type DeviceArray } from '../../index.js';
import { loadOptimizer } from '../../aot/load-optimizer.js';
import { gpuDevice } from '../support/gpu.js';
import { prng, uniform } from '../support/random.js';

const out = mkdtempSync(join(tmpdir(), 'grng-compile-'));

describe('grng compile', () => {
  test(
    'compiles the example optimizer: WGSL, manifest, module; the manifest ' +
      'steps as compileOptimizer does',
    async () => {
      const lines: string[] = [];
      const code = await compile(
        [
          'examples/custom-optimizer/adabelief.ts',
          '--shapes',
          '{"w":[4,3],"b":[3]}',
          '--settings',
          '{"lr":0.01}',
          '--out',
          out,
        ],
        (l) => lines.push(l),
      );
      expect(code).toBe(0);
      const dir = join(out, 'adabelief');
      expect(
        readdirSync(join(dir, 'kernels')).filter((f) => f.endsWith('.wgsl')).length,
      ).toBeGreaterThan(0);
      expect(readFileSync(join(dir, 'adabelief.ts'), 'utf8')).toMatch(/export function load\(/);
      expect(lines[0]).toMatch(/^adabelief \(adabelief\): 1 dispatch\(es\) per step/);

      const device = await gpuDevice();
      const rng = prng(3);
      const params = { w: array(uniform(rng, 12), [4, 3]), b: array(uniform(rng, 3), [3]) };
      const loaded = await loadOptimizer(
        readFileSync(join(dir, 'manifest.json'), 'utf8'),
        device,
        params,
      );
      const jitted = await compileOptimizer(adabelief({ lr: 0.01 }), params, { device });
      for (let k = 0; k < 3; k++) {
        const grads = { w: array(uniform(rng, 12), [4, 3]), b: array(uniform(rng, 3), [3]) };
        await loaded.step(grads);
        await jitted.step(grads);
      }
      const read = async (tree: unknown) =>
        Promise.all(Object.values(tree as Record<string, DeviceArray>).map((a) => a.read()));
      expect(await read(loaded.params())).toEqual(await read(jitted.params()));
    },
  );

  test('purity violations are printed as file:line:col and nothing is compiled', async () => {
    const lines: string[] = [];
    const badOut = join(out, 'bad');
    expect(
      await compile(
        ['test/aot/corpus/bad-several.ts', '--shapes', '{"w":[2]}', '--out', badOut],
        (l) => lines.push(l),
      ),
    ).toBe(1);
    expect(
      lines[0].split('\n').every((l) => /^test\/aot\/corpus\/bad-several\.ts:\d+:\d+: .+/.test(l)),
    ).toBe(true);
    expect(lines.at(-1)).toMatch(/purity violation\(s\).*nothing compiled/);
    expect(existsSync(badOut)).toBe(false);
  });

  test('curvature optimizers compile as training steps (--preset); --shapes says so', async () => {
    const lines: string[] = [];
    expect(
      await compile(
        [
          'optimizers/ring.ts',
          '--preset',
          'mlp:4,6,3',
          '--batch',
          '4',
          '--settings',
          '{"inverseEvery":2}',
          '--out',
          out,
        ],
        (l) => lines.push(l),
      ),
    ).toBe(0);
    expect(lines[0]).toMatch(
      /^ring \(ring\): training step of mlp:4,6,3 at batch 4, \d+\/\d+ dispatch\(es\) per step/,
    );
    expect(readFileSync(join(out, 'ring', 'ring.ts'), 'utf8')).toMatch(/loadTrainStep/);
    await expect(
      compile(['optimizers/ring.ts', '--shapes', '{"w":[2,2]}', '--out', out], () => {}),
    ).rejects.toThrow(/compile a training step with --preset/);
  });

  test('--export checks only that export: an impure one beside it does not block it', async () => {
    const file = 'test/aot/corpus/bad-one-export.ts';
    const lines: string[] = [];
    expect(await compile([file, '--check'], (l) => lines.push(l))).toBe(1);
    expect(lines.at(-1)).toMatch(/1 purity violation\(s\)/);
    lines.length = 0;
    expect(await compile([file, '--export', 'clean', '--check'], (l) => lines.push(l))).toBe(0);
    expect(lines).toEqual([`${file}: clean pure`]);
    expect(await compile([file, '--export', 'dirty', '--check'], () => {})).toBe(1);
    lines.length = 0;
    const args = [file, '--export', 'clean', '--shapes', '{"w":[2]}', '--out', out];
    expect(await compile(args, (l) => lines.push(l))).toBe(0);
    expect(lines[0]).toMatch(/^clean \(clean\): 1 dispatch\(es\) per step/);
    const nope =
      /has no exported optimizer 'nope'; its defineOptimizer\(\.\.\.\) exports: clean, dirty$/;
    await expect(compile([file, '--export', 'nope', '--check'], () => {})).rejects.toThrow(nope);
    const shapes = ['--shapes', '{"w":[2]}', '--out', out];
    await expect(compile([file, '--export', 'nope', ...shapes], () => {})).rejects.toThrow(nope);
  });

  test('--allow-modules lets calls into the named modules through; --help says so', async () => {
    const file = 'test/aot/corpus/bad-impure-call.ts';
    const lines: string[] = [];
    expect(await compile([file, '--check'], (l) => lines.push(l))).toBe(1);
    expect(lines[0]).toContain('(grng compile --allow-modules ./helpers.js)');
    const allowed = [file, '--check', '--allow-modules', 'other,./helpers.js'];
    expect(await compile(allowed, () => {})).toBe(0);
    const help: string[] = [];
    expect(await compile(['--help'], (l) => help.push(l))).toBe(0);
    expect(help.join('\n')).toMatch(/--allow-modules A,B\n\s+modules \(specifiers as the file/);
  });

  test('--check only checks; bad options are one-line errors', async () => {
    const lines: string[] = [];
    expect(await compile(['examples/lion.ts', '--check'], (l) => lines.push(l))).toBe(0);
    expect(lines).toEqual(['examples/lion.ts: lion pure']);
    await expect(compile(['examples/lion.ts', '--out', out], () => {})).rejects.toThrow(
      /--shapes JSON or --preset/,
    );
    await expect(
      compile(['examples/lion.ts', '--shapes', '{"w":[0]}', '--out', out], () => {}),
    ).rejects.toThrow(/positive integers/);
    for (const [name, message] of [
      ['cnn', /--preset cnn: classes= is required/],
      ['resnet:classes=10', /unknown model 'resnet'/],
      ['vit:classes=10,patch=5', /patch 5 must divide the image size 28×28/],
      ['vit:classes=10,width=3', /'width=3' is not one of image=…/],
      ['cnn:classes=10,image=28x28', /image must be HxWxC/],
      ['mlp:784', /at least two positive integers/],
    ] as const)
      await expect(
        compile(['examples/lion.ts', '--preset', name, '--out', out], () => {}),
      ).rejects.toThrow(message);
    await expect(
      compile(
        ['examples/lion.ts', '--shapes', '{"w":[2]}', '--export', 'nope', '--out', out],
        () => {},
      ),
    ).rejects.toThrow(/no exported optimizer 'nope'/);
    await expect(compile([], () => {})).rejects.toThrow(/one file/);
  });
});
