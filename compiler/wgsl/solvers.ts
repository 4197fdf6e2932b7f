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

/** Invocations of the Cholesky kernel's one workgroup. */
const CHOLESKY_LANES = 64;

export function generateSolver(
  plan: KernelPlan,
  e: Emitter,
  out: Location,
  declare: Declare,
  workgroupSize: number,
): KernelSource {
  const root = plan.roots[0];
  return root.op === 'cholesky'
    ? cholesky(root, e, out, declare)
    : triangularSolve(root as Node<'triangularSolve'>, e, out, declare, workgroupSize);
}

/** Lines into the emitter's main block (`declare` finds the bindings they name there). */
function emitLines(e: Emitter, indent: string, lines: readonly string[]): void {
  for (const l of lines) e.line(`${indent}${l}`);
}

function cholesky(root: Node, e: Emitter, out: Location, declare: Declare): KernelSource {
  const a = root.inputs[0];
  const at = (linear: string) => e.element(out, linear);
  const lanes = CHOLESKY_LANES;
  const d = `i32(${e.dimension('order', root.shape[0])})`;
  const copy = e.block(() => {
    const value = e.value(a, ['r', 'c']);
    e.line(`${at('t')} = select(0.0f, ${value}, c <= r);`);
  });
  emitLines(e, '', [
    `let d = ${d};`,
    `for (var t = i32(lane); t < d * d; t += ${lanes}i) {`,
    '  let r = t / d;',
    '  let c = t - r * d;',
    ...copy.map((l) => `  ${l}`),
    '}',
    'storageBarrier();',
    'for (var j = 0i; j < d; j++) {',
    `  if (lane == 0u) { ${at('j * d + j')} = sqrt(${at('j * d + j')}); }`,
    '  storageBarrier();',
    `  let pivot = ${at('j * d + j')};`,
    `  for (var i = j + 1i + i32(lane); i < d; i += ${lanes}i) {`,
    `    ${at('i * d + j')} = ${at('i * d + j')} / pivot;`,
    '  }',
    '  storageBarrier();',
    `  for (var i = j + 1i + i32(lane); i < d; i += ${lanes}i) {`,
    `    let lij = ${at('i * d + j')};`,
    '    for (var c = j + 1i; c <= i; c++) {',
    `      ${at('i * d + c')} = ${at('i * d + c')} - lij * ${at('c * d + j')};`,
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
  return { code: withHelpers(code, 'f32'), invocations: lanes, workgroupSize: lanes };
}

function triangularSolve(
  root: Node<'triangularSolve'>,
  e: Emitter,
  out: Location,
  declare: Declare,
  workgroupSize: number,
): KernelSource {
  const [l, rhs] = root.inputs;
  const [rows, columns] = root.shape;
  const { transpose } = root.attrs;
  const x = (row: string) => e.element(out, `${row} * k + col`);
  const d = `i32(${e.dimension('order', rows)})`;
  const k = `i32(${e.dimension('columns', columns)})`;
  const row = (counter: string) => (transpose ? `d - 1i - ${counter}` : counter);
  const start = e.block(() => e.line(`var s = ${e.value(rhs, ['i', 'col'])};`));
  const step = e.block(() => {
    const lij = transpose ? e.value(l, ['j', 'i']) : e.value(l, ['i', 'j']);
    e.line(`s = s - ${lij} * ${x('j')};`);
  });
  const finish = e.block(() => e.line(`${x('i')} = s / ${e.value(l, ['i', 'i'])};`));
  emitLines(e, '', [
    `let d = ${d};`,
    `let k = ${k};`,
    'if (col >= k) { return; }',
    'for (var step = 0i; step < d; step++) {',
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
  return { code: withHelpers(code, 'f32'), invocations: columns, workgroupSize };
}
