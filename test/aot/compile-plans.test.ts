// Ahead-of-time compiled optimizers (grng compile's plans) against the same optimizers compiled
// by compileOptimizer: bitwise equal parameters and state on WebGPU step after step, with a
// manifest that went through JSON, runtime hyperparameter changes, `every` patterns, and the
// generated TypeScript module — type-checked and imported — giving the same step.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import ts from 'typescript';
import { emitModule } from '../../aot/emit-module.js';
import {
  adamw,
  array,
  compileOptimizer,
  compileTrainStep,
  crossEntropy,
  GrngError,
  nn,
  ring,
  type DeviceArray,
  type HostArray,
  type Optimizer,
} from '../../index.js';
import { flattenTree } from '../../core/tree.js';
import { compileOptimizerPlans } from '../../aot/compile-plans.js';
import { preset } from '../../aot/presets.js';
import { loadOptimizer, loadTrainStep } from '../../aot/load-optimizer.js';
import { manifestFromJson, manifestToJson } from '../../aot/manifest.js';
import { isArrayLeaf } from '../../runtime/jit.js';
import { gpuDevice } from '../support/gpu.js';
import { prng, uniform } from '../support/random.js';
import { pulsedSgd } from './fixtures/pulsed-sgd.js';

const device = await gpuDevice();
const SHAPES = { w: { shape: [3, 5], dtype: 'f32' }, b: { shape: [5], dtype: 'f32' } } as const;
const rng = prng(8);
const hostParams = () => ({ w: array(uniform(rng, 15), [3, 5]), b: array(uniform(rng, 5), [5]) });
const gradients = (n: number) =>
  Array.from({ length: n }, () => ({
    w: array(uniform(rng, 15), [3, 5]),
    b: array(uniform(rng, 5), [5]),
  }));
const read = async (tree: unknown) =>
  Promise.all(
    flattenTree('test', tree, isArrayLeaf, 'an array').leaves.map((a) => (a as DeviceArray).read()),
  );

/**
 * Runs `steps` through compileOptimizer and through the plans; both must agree bit for bit after
 * every step.
 */
async function expectSameSteps(
  optimizer: Optimizer,
  load: (params: { w: HostArray; b: HostArray }) => Promise<{
    step(g: unknown): Promise<void>;
    params(): unknown;
    state(): unknown;
    setHyper(c: Record<string, number>): void;
  }>,
  steps: number,
  changeAt?: { step: number; hyper: Record<string, number> },
) {
  const params = hostParams();
  const jitted = await compileOptimizer(optimizer, params, { device });
  const loaded = await load(params);
  expect(await read(loaded.state())).toEqual(await read(jitted.state()));
  for (const [i, g] of gradients(steps).entries()) {
    if (changeAt?.step === i + 1) {
      jitted.setHyper(changeAt.hyper as never);
      loaded.setHyper(changeAt.hyper);
    }
    await jitted.step(g);
    await loaded.step(g);
    // The same WGSL on the same buffers layout: bitwise, not approximately.
    expect(await read(loaded.params())).toEqual(await read(jitted.params()));
    expect(await read(loaded.state())).toEqual(await read(jitted.state()));
  }
}

describe('grng compile plans', () => {
  test(
    'AdamW: the loaded plans step exactly as compileOptimizer, through ' +
      'JSON, with lr changed at run time',
    async () => {
      const optimizer = adamw({ lr: 0.01, weightDecay: 0.1 }) as unknown as Optimizer;
      const manifest = manifestFromJson(manifestToJson(compileOptimizerPlans(optimizer, SHAPES)));
      expect(manifest.steps.length).toBe(1);
      expect(manifest.numeric).toContain('lr');
      await expectSameSteps(optimizer, (params) => loadOptimizer(manifest, device, params), 4, {
        step: 3,
        hyper: { lr: 0.002 },
      });
    },
  );

  test('every(): one plan per pattern of due periods, chosen by step', async () => {
    const optimizer = pulsedSgd({ lr: 0.05 }) as unknown as Optimizer;
    const manifest = compileOptimizerPlans(optimizer, SHAPES);
    expect(manifest.periods).toEqual([3]);
    expect(manifest.steps.map((s) => s.periods)).toEqual([[3], []]);
    expect(manifest.fixed).toEqual(expect.arrayContaining(['every', 'nesterov']));
    await expectSameSteps(optimizer, (params) => loadOptimizer(manifest, device, params), 7);
  });

  test(
    'a whole training step (RING on an MLP, Lazy Fisher period 2): ' +
      'metrics, parameters and state bitwise as compileTrainStep',
    async () => {
      const model = nn.mlp([4, 6, 3]);
      const optimizer = ring({
        lr: 0.05,
        inverseEvery: 2,
        newtonIters: 4,
        powerSteps: 3,
      }) as unknown as Optimizer;
      const shapes = flattenTree('test', model.init(0), isArrayLeaf, 'an array').rebuild(
        flattenTree('test', model.init(0), isArrayLeaf, 'an array').leaves.map((a) => ({
          shape: (a as HostArray).shape,
          dtype: 'f32',
        })),
      );
      const train = {
        model: model as never,
        loss: crossEntropy,
        batch: { x: { shape: [4, 4], dtype: 'f32' }, y: { shape: [4], dtype: 'i32' } },
        metrics: ['loss', 'accuracy', 'fallbacks'],
        description: 'mlp:4,6,3',
      } as const;
      const manifest = manifestFromJson(
        manifestToJson(compileOptimizerPlans(optimizer, shapes, { train })),
      );
      expect(manifest.kind).toBe('train-step');
      expect(manifest.steps.map((p) => p.periods)).toEqual([[1, 2], [1]]);
      const jitted = await compileTrainStep({
        model,
        loss: crossEntropy,
        optimizer,
        params: model.init(0),
        device,
        metrics: train.metrics,
      });
      const loaded = await loadTrainStep(manifest, device, model.init(0));
      for (let step = 0; step < 4; step++) {
        const batch = {
          x: array(uniform(rng, 16), [4, 4]),
          y: array(Int32Array.from([0, 1, 2, step % 3]), [4], 'i32'),
        };
        const want = await jitted.run(batch);
        expect(await loaded.run(batch)).toEqual(want);
        expect(await read(loaded.params())).toEqual(await read(await jitted.params()));
        expect(await read(loaded.state())).toEqual(await read(await jitted.state()));
      }
      await expect(loadOptimizer(manifest, device, model.init(0))).rejects.toThrow(/loadTrainStep/);
    },
  );

  test(
    'a ViT training step (grng compile --preset vit:…, AdamW): metrics, parameters and state ' +
      'bitwise as compileTrainStep',
    async () => {
      const chosen = preset('vit:image=4x4x1,patch=2,dim=4,depth=1,heads=2,classes=3');
      expect(chosen.features).toBe(16);
      const optimizer = adamw({ lr: 0.01 }) as unknown as Optimizer;
      const train = {
        model: chosen.model,
        loss: crossEntropy,
        batch: { x: { shape: [5, 16], dtype: 'f32' }, y: { shape: [5], dtype: 'i32' } },
        metrics: ['loss', 'accuracy'],
        description: 'vit',
      } as const;
      const manifest = manifestFromJson(
        manifestToJson(compileOptimizerPlans(optimizer, chosen.shapes, { train })),
      );
      const params = () => (chosen.model as unknown as { init(s: number): object }).init(0);
      const jitted = await compileTrainStep({
        model: chosen.model,
        loss: crossEntropy,
        optimizer,
        params: params() as never,
        device,
        metrics: train.metrics,
      });
      const loaded = await loadTrainStep(manifest, device, params() as never);
      for (let step = 0; step < 3; step++) {
        const batch = {
          x: array(uniform(rng, 80), [5, 16]),
          y: array(Int32Array.from([0, 1, 2, step % 3, 1]), [5], 'i32'),
        };
        const want = await jitted.run(batch);
        expect(await loaded.run(batch)).toEqual(want);
        expect(await read(loaded.params())).toEqual(await read(await jitted.params()));
        expect(await read(loaded.state())).toEqual(await read(await jitted.state()));
      }
    },
  );

  test(
    'bad loads are GrngErrors: fixed hyperparameters, wrong shapes, ' + 'another device kind',
    async () => {
      const manifest = compileOptimizerPlans(pulsedSgd() as unknown as Optimizer, SHAPES);
      const loaded = await loadOptimizer(manifest, device, hostParams());
      expect(() => loaded.setHyper({ every: 2 } as never)).toThrow(/recompile/);
      expect(() => loaded.setHyper({ bogus: 1 } as never)).toThrow(/unknown hyperparameter/);
      await expect(
        loaded.step({ w: array(new Float64Array(4), [2, 2]), b: array(new Float64Array(5), [5]) }),
      ).rejects.toThrow(/compiled for \[3, 5\]/);
      const { createDevice } = await import('../../index.js');
      await expect(
        loadOptimizer(manifest, await createDevice({ kind: 'cpu' }), hostParams()),
      ).rejects.toThrow(GrngError);
      expect(() => manifestFromJson({ format: 'other' })).toThrow(/not a grng compile manifest/);
    },
  );

  test('the generated module type-checks and its load() gives the same steps', async () => {
    const optimizer = adamw({ lr: 0.01 }) as unknown as Optimizer;
    const dir = join('test', 'aot', 'generated');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, 'adamw-step.ts');
    writeFileSync(
      file,
      emitModule(compileOptimizerPlans(optimizer, SHAPES, { source: 'test' }), {
        importFrom: '../../../aot/index.js',
      }),
    );
    // Type-check it as a user's project would (strict, NodeNext), including a call with the typed
    // params.
    const usage = join(dir, 'use-adamw-step.ts');
    writeFileSync(
      usage,
      "import { load, type Hyper } from './adamw-step.js';\nimport type { " +
        "Device } from '../../../aot/index.js';\nexport async function f(d: " +
        'Device, w: number, b: number) {\n  const o = await load(d, { w, b ' +
        '});\n  const h: Hyper = o.hyper;\n  o.setHyper({ lr: h.lr / 2 });\n  ' +
        'return o.params().w;\n}\n',
    );
    const program = ts.createProgram([file, usage], {
      strict: true,
      noEmit: true,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      target: ts.ScriptTarget.ES2022,
      types: [],
      skipLibCheck: true,
      lib: ['lib.es2022.d.ts', 'lib.dom.d.ts'],
    });
    const errors = ts
      .getPreEmitDiagnostics(program)
      .filter((d) => d.file !== undefined && /generated/.test(d.file.fileName));
    expect(errors.map((d) => ts.flattenDiagnosticMessageText(d.messageText, ' '))).toEqual([]);
    // not a literal: the file is written by this test
    const specifier = './generated/adamw-step.js';
    const generated = (await import(/* @vite-ignore */ specifier)) as {
      load: (d: unknown, p: unknown) => ReturnType<typeof loadOptimizer>;
    };
    await expectSameSteps(optimizer, (params) => generated.load(device, params) as never, 3);
  });
});
