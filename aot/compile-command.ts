// `grng compile <file.ts>`: checks the file's exported optimizers for purity (statically, with
// ts-morph), traces each for a parameter layout, and writes its kernels' WGSL, a manifest (plans:
// kernels, bindings, buffer layout, runtime numbers) and a typed TypeScript module that loads the
// compiled step through grng/aot without tracing.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { checkPurity, formatViolations } from './purity.js';
import { emitModule } from './emit-module.js';
import { importOptimizerFile } from './load-source.js';
import { GrngError } from '../core/errors.js';
import { preset } from './presets.js';
import type { Optimizer } from '../dsl/optimizer.js';
import { flattenTree } from '../core/tree.js';
import { compileOptimizerPlans, PORTABLE_LIMITS, type TrainStepTarget } from './compile-plans.js';
import { crossEntropy } from '../dsl/index.js';
import { manifestToJson, type LeafSpec, type PlanLimits } from './manifest.js';

export const COMPILE_USAGE = `Usage: grng compile <file.ts> (--shapes JSON | --preset mlp:784,256,10) [options]

Checks the optimizers the file exports (defineOptimizer) for purity, then compiles each into WGSL
kernels, a manifest and a typed module loadable with grng/aot: with --shapes, the update from
given gradients (gradient-only optimizers); with --preset, a whole training step of that model
(forward, cross-entropy, backward, update), which curvature optimizers (RING, K-FAC, ...) need.

Options:
  --shapes JSON      the parameter tree: leaves are shapes, e.g. '{"w":[784,256],"b":[256]}'
  --preset NAME      a model instead, compiled as a training step: mlp:SIZES (e.g. mlp:784,256,10),
                     vit:image=28x28x1,patch=7,dim=64,depth=2,heads=4,classes=10 (mlpDim=N
                     optional) or cnn:image=28x28x1,channels=16/32,kernel=3,classes=10 (hidden=N
                     optional); unnamed options take these values
  --batch N          the training step's batch size (default 128)
  --metrics A,B      what each training step returns (default loss,accuracy)
  --export NAME      check and compile only this export (default: every exported optimizer)
  --allow-modules A,B
                     modules (specifiers as the file imports them: ./my-ops.js,some-package)
                     whose functions the optimizer may call: the purity check cannot see into
                     them, so by default a call into a module other than grng is a violation
  --settings JSON    hyperparameter settings, e.g. '{"lr":0.001}' (numbers stay settable at run time)
  --limits KIND      portable (WebGPU's defaults, the default) or here (this machine's adapter)
  --import-from SPEC where the generated module imports the runtime (default grng/aot)
  --check            check purity only
  --out DIR          default compiled/ (one folder per optimizer)
  -h, --help         show this help
`;

/** A shapes tree (leaves: arrays of numbers) as a tree of f32 leaf specs. */
export function parseShapes(text: string): unknown {
  let tree: unknown;
  try {
    tree = JSON.parse(text);
  } catch (error) {
    throw new GrngError('compile', `--shapes is not JSON: ${(error as Error).message}`);
  }
  const isShape = (x: unknown): x is number[] =>
    Array.isArray(x) && x.every((d) => Number.isInteger(d) && d >= 1);
  const { leaves, rebuild } = flattenTree(
    'compile',
    tree,
    isShape,
    'a shape (an array of positive integers)',
  );
  if (leaves.length === 0) throw new GrngError('compile', '--shapes has no parameters');
  return rebuild(leaves.map((shape): LeafSpec => ({ shape, dtype: 'f32' })));
}

const isFactory = (x: unknown): x is (settings?: object) => Optimizer<never, unknown> =>
  typeof x === 'function';

/** Runs `grng compile` with `argv` (after the command name); returns the exit code. */
export async function compile(
  argv: readonly string[],
  print: (line: string) => void,
  limitsHere?: () => Promise<PlanLimits>,
): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: {
      shapes: { type: 'string' },
      preset: { type: 'string' },
      batch: { type: 'string', default: '128' },
      metrics: { type: 'string', default: 'loss,accuracy' },
      export: { type: 'string' },
      'allow-modules': { type: 'string', default: '' },
      settings: { type: 'string', default: '{}' },
      limits: { type: 'string', default: 'portable' },
      'import-from': { type: 'string', default: 'grng/aot' },
      check: { type: 'boolean', default: false },
      out: { type: 'string', default: 'compiled' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    print(COMPILE_USAGE);
    return 0;
  }
  if (positionals.length !== 1)
    throw new GrngError(
      'compile',
      `expects one file, got ${positionals.length}: grng compile <file.ts> --shapes JSON`,
    );
  const [file] = positionals;
  const report = checkPurity(file, {
    allowModules: values['allow-modules'].split(',').filter((m) => m !== ''),
    exports: values.export === undefined ? undefined : [values.export],
  });
  const exported = report.optimizers.map((o) => o.exportName);
  const missing = (name: string) =>
    new GrngError(
      'compile',
      `${file} has no exported optimizer '${name}'; its defineOptimizer(...) exports: ` +
        `${exported.length === 0 ? 'none' : exported.join(', ')}`,
    );
  // An export made otherwise (chain(...)) has nothing to check statically, but still compiles.
  if (values.check && values.export !== undefined && !exported.includes(values.export))
    throw missing(values.export);
  if (report.violations.length > 0) {
    print(formatViolations(report.violations));
    print(
      `grng compile: ${report.violations.length} purity violation(s) in ${file}; nothing compiled`,
    );
    return 1;
  }
  const names = values.export === undefined ? exported : [values.export];
  if (names.length === 0)
    throw new GrngError('compile', `${file} exports no defineOptimizer(...) optimizer`);
  if (values.check) {
    print(`${file}: ${names.join(', ')} pure`);
    return 0;
  }
  if ((values.shapes === undefined) === (values.preset === undefined))
    throw new GrngError(
      'compile',
      'give the parameter layout: --shapes JSON or --preset mlp:SIZES, vit:… or cnn:… (one of them)',
    );
  const chosen = values.preset === undefined ? undefined : preset(values.preset);
  const specs = values.shapes !== undefined ? parseShapes(values.shapes) : chosen?.shapes;
  const batch = Number(values.batch);
  if (!Number.isInteger(batch) || batch < 1)
    throw new GrngError('compile', `--batch must be a positive integer, got '${values.batch}'`);
  const train: TrainStepTarget | undefined =
    chosen === undefined
      ? undefined
      : {
          model: chosen.model,
          loss: crossEntropy,
          batch: {
            x: { shape: [batch, chosen.features], dtype: 'f32' },
            y: { shape: [batch], dtype: 'i32' },
          },
          metrics: values.metrics.split(',').filter((m) => m !== ''),
          description: values.preset as string,
        };
  let settings: Record<string, unknown>;
  try {
    settings = JSON.parse(values.settings) as Record<string, unknown>;
  } catch (error) {
    throw new GrngError('compile', `--settings is not JSON: ${(error as Error).message}`);
  }
  if (values.limits !== 'portable' && values.limits !== 'here')
    throw new GrngError('compile', `--limits must be portable or here, got '${values.limits}'`);
  const limits =
    values.limits === 'here' && limitsHere !== undefined ? await limitsHere() : PORTABLE_LIMITS;

  const module = await importOptimizerFile(file);
  for (const name of names) {
    const factory = module[name];
    if (!isFactory(factory)) throw missing(name);
    const optimizer = factory(settings);
    let manifest;
    try {
      manifest = compileOptimizerPlans(optimizer, specs, {
        limits,
        source: `${file}#${name}`,
        train,
      });
    } catch (error) {
      // Curvature optimizers read the model: say how to compile them instead of compileOptimizer's
      // advice.
      if (
        train === undefined &&
        error instanceof GrngError &&
        /needs the model/.test(error.message)
      ) {
        throw new GrngError(
          'compile',
          `${name} (${optimizer.name}) needs the model and the batch (it reads ` +
            `ctx.taps, ctx.hvp or ctx.loss): compile a training step with --preset ` +
            `mlp:SIZES --batch N instead of --shapes`,
        );
      }
      throw error;
    }
    const dir = join(values.out, name);
    mkdirSync(join(dir, 'kernels'), { recursive: true });
    const written: string[] = [];
    const wgsl = (label: string, code: string) => {
      const path = join(dir, 'kernels', `${label}.wgsl`);
      writeFileSync(path, code);
      written.push(path);
    };
    manifest.init.kernels.forEach((k, i) => wgsl(`init-${String(i).padStart(2, '0')}`, k.code));
    manifest.steps.forEach((s, p) =>
      s.plan.kernels.forEach((k, i) =>
        wgsl(
          `step${manifest.steps.length > 1 ? `-${p}` : ''}-${String(i).padStart(2, '0')}`,
          k.code,
        ),
      ),
    );
    writeFileSync(join(dir, 'manifest.json'), `${manifestToJson(manifest)}\n`);
    writeFileSync(
      join(dir, `${name}.ts`),
      emitModule(manifest, { importFrom: values['import-from'] }),
    );
    const perStep = manifest.steps.map((s) => s.plan.kernels.length).join('/');
    const kind =
      train === undefined ? '' : `training step of ${train.description} at batch ${batch}, `;
    print(
      `${name} (${manifest.optimizer}): ${kind}${perStep} dispatch(es) per ` +
        `step, ${manifest.init.kernels.length} for init; wrote ` +
        `${join(dir, `${name}.ts`)}, ${join(dir, 'manifest.json')} and ` +
        `${written.length} WGSL file(s) in ${join(dir, 'kernels')}`,
    );
  }
  return 0;
}
