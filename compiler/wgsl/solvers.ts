// Kernels of the dense solvers (core/ops/solvers.ts), each running alone. They perform the
// interpreter's operations in its order, so a float32 interpreter run predicts them.
// - cholesky: one workgroup factors A in place in its output, right-looking: per column the pivot,
//   the column below it, then the trailing lower triangle, a barrier between the three (storage
//   barriers: the factor lives in a storage buffer, too large for workgroup memory at d ≈ 300).
// - triangularSolve: one invocation per right-hand-side column, substituting row after row; each
//   reads back only the rows it wrote itself.
import type { Node } from '../../core/ir/node.js';
import type { KernelPlan } from '../kernels/partition.js';
import type { Emitter, Location } from './emitter.js';
import { withHelpers, type Declare, type KernelSource } from './module.js';
import { LOOP_BUDGET } from '../kernels/loop-budget.js';

/** Invocations of the Cholesky kernel's one workgroup. */
const CHOLESKY_LANES = 64;

/**
 * A solver kernel and its passes: the values of its offsets uniform for each dispatch. A
 * factorization or solve that would loop past LOOP_BUDGET in one invocation (llvmpipe stops an
 * invocation's loops after 65535 iterations, kernels/loop-budget.ts) runs as several dispatches of
 * one kernel, each over a range of its steps, in order: the same operations in the same order.
 */
export type SolverSource = KernelSource & { readonly passes: readonly { offsets: number[] }[] };

export function generateSolver(
  plan: KernelPlan,
  e: Emitter,
  out: Location,
  declare: Declare,
  workgroupSize: number,
): SolverSource {
  const root = plan.roots[0];
  return root.op === 'cholesky'
    ? cholesky(root, e, out, declare)
    : triangularSolve(root as Node<'triangularSolve'>, e, out, declare, workgroupSize);
}

/** Lines into the emitter's main block (`declare` finds the bindings they name there). */
function emitLines(e: Emitter, indent: string, lines: readonly string[]): void {
  for (const l of lines) e.line(`${indent}${l}`);
}

/**
 * Offsets-uniform cells a pass sets (a step range): their expressions, and each pass's offsets,
 * the kernel's own values with these cells replaced.
 */
function passCells(e: Emitter, keys: readonly string[]) {
  const at = keys.map((key) => {
    const index = e.offsets.length;
    return { index, expr: `i32(${e.dimension(`pass ${key}`, 0)})` };
  });
  return {
    expr: at.map((a) => a.expr),
    passes: (ranges: readonly (readonly number[])[]) =>
      ranges.map((values) => {
        const offsets = [...e.offsets];
        at.forEach((a, k) => (offsets[a.index] = values[k]));
        return { offsets };
      }),
  };
}

/**
 * The Cholesky kernel's passes as [copy from, copy to, first column, end column, first row, end
 * row]: the lower triangle copied in chunks, then columns while a lane's loops stay within the
 * budget; a column too long for one pass has its trailing rows split over several (its pivot and
 * the column below it in the first).
 */
export function choleskyPasses(d: number, lanes: number, budget: number): number[][] {
  const passes: number[][] = [];
  const perLane = (n: number) => Math.ceil(Math.max(n, 0) / lanes);
  // Rows [a, b) of column j: per lane, ⌈(b − a)/lanes⌉ rows of at most b − j steps each.
  const update = (j: number, a: number, b: number) => perLane(b - a) * (b - j + 1);
  const column = (j: number) => 2 + perLane(d - j - 1) + update(j, j + 1, d);
  let copied = 0;
  while (perLane(d * d - copied) > budget) {
    passes.push([copied, copied + lanes * budget, 0, 0, 0, d]);
    copied += lanes * budget;
  }
  let current = [copied, d * d, 0, 0, 0, d];
  let cost = perLane(d * d - copied);
  for (let j = 0; j < d; j++) {
    const c = column(j);
    if (cost + c <= budget) {
      current[3] = j + 1;
      cost += c;
      continue;
    }
    passes.push(current);
    if (c <= budget) {
      [current, cost] = [[0, 0, j, j + 1, 0, d], c];
      continue;
    }
    // Rows per pass so that a lane's share stays within the budget (at least a row per lane).
    const rows = lanes * Math.max(1, Math.floor((budget - 2 - perLane(d - j - 1)) / (d - j + 1)));
    for (let a = j + 1; a < d; a += rows) {
      const b = Math.min(d, a + rows);
      passes.push([0, 0, j, j + 1, a === j + 1 ? 0 : a, b]);
    }
    [current, cost] = [[0, 0, j + 1, j + 1, 0, d], 0];
  }
  if (current[1] > current[0] || current[3] > current[2]) passes.push(current);
  return passes;
}

/**
 * The triangular solve's passes as [first step, end step]: a column's substitution loops over
 * step·(step + 1)/2 products in all.
 */
export function substitutionPasses(d: number, budget: number): number[][] {
  const passes: number[][] = [];
  let [from, cost] = [0, 0];
  for (let step = 0; step < d; step++) {
    if (cost + step + 1 > budget && step > from) {
      passes.push([from, step]);
      [from, cost] = [step, 0];
    }
    cost += step + 1;
  }
  passes.push([from, d]);
  return passes;
}

function cholesky(root: Node, e: Emitter, out: Location, declare: Declare): SolverSource {
  const a = root.inputs[0];
  const at = (linear: string) => e.element(out, linear);
  const set = (linear: string, value: string) => e.storeElement(out, linear, value);
  const lanes = CHOLESKY_LANES;
  const d = `i32(${e.dimension('order', root.shape[0])})`;
  const cells = passCells(e, [
    'copy from',
    'copy to',
    'column from',
    'column to',
    'row from',
    'row to',
  ]);
  const [t0, t1, j0, j1, i0, i1] = cells.expr;
  const copy = e.block(() => {
    const value = e.value(a, ['r', 'c']);
    e.line(set('t', `select(0.0f, ${value}, c <= r)`));
  });
  emitLines(e, '', [
    `let d = ${d};`,
    `for (var t = ${t0} + i32(lane); t < ${t1}; t += ${lanes}i) {`,
    '  let r = t / d;',
    '  let c = t - r * d;',
    ...copy.map((l) => `  ${l}`),
    '}',
    'storageBarrier();',
    `let rows = ${i0};`,
    `for (var j = ${j0}; j < ${j1}; j++) {`,
    '  if (rows == 0i) {',
    `    if (lane == 0u) { ${set('j * d + j', `sqrt(${at('j * d + j')})`)} }`,
    '    storageBarrier();',
    `    let pivot = ${at('j * d + j')};`,
    `    for (var i = j + 1i + i32(lane); i < d; i += ${lanes}i) {`,
    `      ${set('i * d + j', `${at('i * d + j')} / pivot`)}`,
    '    }',
    '    storageBarrier();',
    '  }',
    `  for (var i = max(j + 1i, rows) + i32(lane); i < ${i1}; i += ${lanes}i) {`,
    `    let lij = ${at('i * d + j')};`,
    '    for (var c = j + 1i; c <= i; c++) {',
    `      ${set('i * d + c', `${at('i * d + c')} - lij * ${at('c * d + j')}`)}`,
    '    }',
    '  }',
    '  storageBarrier();',
    '}',
  ]);
  const code = `${declare(new Set()).join('\n')}

@compute @workgroup_size(${lanes})
fn main(@builtin(local_invocation_index) lane: u32) {
${e
  .lines()
  .map((l) => `  ${l}`)
  .join('\n')}
}
`;
  const passes = cells.passes(choleskyPasses(root.shape[0], lanes, LOOP_BUDGET));
  return { code: withHelpers(code, 'f32'), invocations: lanes, workgroupSize: lanes, passes };
}

function triangularSolve(
  root: Node<'triangularSolve'>,
  e: Emitter,
  out: Location,
  declare: Declare,
  workgroupSize: number,
): SolverSource {
  const [l, rhs] = root.inputs;
  const [rows, columns] = root.shape;
  const { transpose } = root.attrs;
  const x = (row: string) => e.element(out, `${row} * k + col`);
  const d = `i32(${e.dimension('order', rows)})`;
  const k = `i32(${e.dimension('columns', columns)})`;
  const cells = passCells(e, ['step from', 'step to']);
  const row = (counter: string) => (transpose ? `d - 1i - ${counter}` : counter);
  const start = e.block(() => e.line(`var s = ${e.value(rhs, ['i', 'col'])};`));
  const step = e.block(() => {
    const lij = transpose ? e.value(l, ['j', 'i']) : e.value(l, ['i', 'j']);
    e.line(`s = s - ${lij} * ${x('j')};`);
  });
  const finish = e.block(() =>
    e.line(e.storeElement(out, 'i * k + col', `s / ${e.value(l, ['i', 'i'])}`)),
  );
  emitLines(e, '', [
    `let d = ${d};`,
    `let k = ${k};`,
    'if (col >= k) { return; }',
    `for (var step = ${cells.expr[0]}; step < ${cells.expr[1]}; step++) {`,
    `  let i = ${row('step')};`,
    ...start.map((s) => `  ${s}`),
    '  for (var q = 0i; q < step; q++) {',
    `    let j = ${row('q')};`,
    ...step.map((s) => `    ${s}`),
    '  }',
    ...finish.map((s) => `  ${s}`),
    '}',
  ]);
  const code = `${declare(new Set()).join('\n')}

@compute @workgroup_size(${workgroupSize})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let col = i32(gid.x + gid.y * groups.x * ${workgroupSize}u);
${e
  .lines()
  .map((l) => `  ${l}`)
  .join('\n')}
}
`;
  const passes = cells.passes(substitutionPasses(rows, LOOP_BUDGET));
  return { code: withHelpers(code, 'f32'), invocations: columns, workgroupSize, passes };
}
