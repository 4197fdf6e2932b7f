// `grng compile <file.ts>`: checks the file's exported optimizers for purity (statically, with
// ts-morph), traces each for a parameter layout, and writes its kernels' WGSL, a manifest (plans:
// kernels, bindings, buffer layout, runtime numbers) and a typed TypeScript module that loads the
// compiled step through grng/aot without tracing.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { checkPurity, formatViolations } from '../compiler/aot/purity.js';
import { emitModule } from '../compiler/aot/emit-module.js';
import { importOptimizerFile } from '../compiler/aot/load-source.js';
import { GrngError } from '../compiler/errors.js';
import type { DType } from '../compiler/ir/index.js';
import { nn } from '../dsl/nn/index.js';
import type { Optimizer } from '../dsl/optimizer.js';
import { flattenTree } from '../dsl/tree.js';
import { compileOptimizerPlans, PORTABLE_LIMITS } from '../runtime/aot/compile-plans.js';
import { manifestToJson, type LeafSpec, type PlanLimits } from '../runtime/aot/manifest.js';
import { HostArray } from '../runtime/host-array.js';

export const COMPILE_USAGE = `Usage: grng compile <file.ts> (--shapes JSON | --preset mlp:784,256,10) [options]

Checks the optimizers the file exports (defineOptimizer) for purity, then compiles each for the
given parameter layout into WGSL kernels, a manifest and a typed module loadable with grng/aot.

Options:
  --shapes JSON      the parameter tree: leaves are shapes, e.g. '{"w":[784,256],"b":[256]}'
  --preset NAME      a model's parameters instead: mlp:SIZES (e.g. mlp:784,256,10)
  --export NAME      compile only this export (default: every exported optimizer)
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
  const isShape = (x: unknown): x is number[] => Array.isArray(x) && x.every((d) => Number.isInteger(d) && d >= 1);
  const { leaves, rebuild } = flattenTree('compile', tree, isShape, 'a shape (an array of positive integers)');
  if (leaves.length === 0) throw new GrngError('compile', '--shapes has no parameters');
  return rebuild(leaves.map((shape): LeafSpec => ({ shape, dtype: 'f32' })));
}

/** The parameter layout of a model preset (mlp:784,256,10). */
export function presetShapes(preset: string): unknown {
  const match = /^mlp:(\d+(?:,\d+)+)$/.exec(preset);
  if (match === null) throw new GrngError('compile', `--preset must look like mlp:784,256,10, got '${preset}'`);
  const params = nn.mlp(match[1].split(',').map(Number)).init(0);
  const { leaves, rebuild } = flattenTree('compile', params, (x): x is HostArray => x instanceof HostArray, 'an array');
  return rebuild(leaves.map((a): LeafSpec => ({ shape: a.shape, dtype: a.dtype as DType })));
}

const isFactory = (x: unknown): x is (settings?: object) => Optimizer<never, unknown> => typeof x === 'function';

/** Runs `grng compile` with `argv` (after the command name); returns the exit code. */
export async function compile(argv: readonly string[], print: (line: string) => void, limitsHere?: () => Promise<PlanLimits>): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: {
      shapes: { type: 'string' },
      preset: { type: 'string' },
      export: { type: 'string' },
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
  if (positionals.length !== 1) throw new GrngError('compile', `expects one file, got ${positionals.length}: grng compile <file.ts> --shapes JSON`);
  const [file] = positionals;
  const report = checkPurity(file);
  if (report.violations.length > 0) {
    print(formatViolations(report.violations));
    print(`grng compile: ${report.violations.length} purity violation(s) in ${file}; nothing compiled`);
    return 1;
  }
  const names = values.export === undefined ? report.optimizers.map((o: { exportName: string }) => o.exportName) : [values.export];
  if (names.length === 0) throw new GrngError('compile', `${file} exports no defineOptimizer(...) optimizer`);
  if (values.check) {
    print(`${file}: ${names.join(', ')} pure`);
    return 0;
  }
  if ((values.shapes === undefined) === (values.preset === undefined)) throw new GrngError('compile', 'give the parameter layout: --shapes JSON or --preset mlp:SIZES (one of them)');
  const specs = values.shapes !== undefined ? parseShapes(values.shapes) : presetShapes(values.preset as string);
  let settings: Record<string, unknown>;
  try {
    settings = JSON.parse(values.settings) as Record<string, unknown>;
  } catch (error) {
    throw new GrngError('compile', `--settings is not JSON: ${(error as Error).message}`);
  }
  if (values.limits !== 'portable' && values.limits !== 'here') throw new GrngError('compile', `--limits must be portable or here, got '${values.limits}'`);
  const limits = values.limits === 'here' && limitsHere !== undefined ? await limitsHere() : PORTABLE_LIMITS;

  const module = await importOptimizerFile(file);
  for (const name of names) {
    const factory = module[name];
    if (!isFactory(factory)) throw new GrngError('compile', `${file} has no exported optimizer '${name}'`);
    const optimizer = factory(settings);
    const manifest = compileOptimizerPlans(optimizer, specs, { limits, source: `${file}#${name}` });
    const dir = join(values.out, name);
    mkdirSync(join(dir, 'kernels'), { recursive: true });
    const written: string[] = [];
    const wgsl = (label: string, code: string) => {
      const path = join(dir, 'kernels', `${label}.wgsl`);
      writeFileSync(path, code);
      written.push(path);
    };
    manifest.init.kernels.forEach((k, i) => wgsl(`init-${String(i).padStart(2, '0')}`, k.code));
    manifest.steps.forEach((s, p) => s.plan.kernels.forEach((k, i) => wgsl(`step${manifest.steps.length > 1 ? `-${p}` : ''}-${String(i).padStart(2, '0')}`, k.code)));
    writeFileSync(join(dir, 'manifest.json'), `${manifestToJson(manifest)}\n`);
    writeFileSync(join(dir, `${name}.ts`), emitModule(manifest, { importFrom: values['import-from'] }));
    const perStep = manifest.steps.map((s) => s.plan.kernels.length).join('/');
    print(`${name} (${manifest.optimizer}): ${perStep} dispatch(es) per step, ${manifest.init.kernels.length} for init; wrote ${join(dir, `${name}.ts`)}, ${join(dir, 'manifest.json')} and ${written.length} WGSL file(s) in ${join(dir, 'kernels')}`);
  }
  return 0;
}
