import type { Node } from '../../core/ir/node.js';
import { shapeSize, stridesOf } from '../../core/ir/shape.js';
import type { KernelPlan } from '../kernels/partition.js';
import type { Emitter } from './emitter.js';
import { unravel, type Locate, type Location } from './emitter.js';
import { range, scaled, sum } from './u32-index.js';
import { emitVectorEpilogue, vectorEpilogue } from './vector-epilogue.js';
import { stridedView, type StridedView } from './strided-view.js';
import { literal } from '../../core/ops/wgsl-literals.js';
import { assemble, type Declare, type KernelSource } from './module.js';

/** Outputs per invocation (rows × cols) of the general kernel: scalar loads, any operands. */
const SCALAR_TILE = { rows: 8, cols: 16 };
/**
 * Outputs per invocation of the vec4 kernel (cols in floats: 4 vec4s). Tuned on llvmpipe: 16×16
 * ran 1.76× the scalar 8×16 at 512³; 16×32 was a little faster but compiles about 3× longer.
 */
const VEC4_TILE = { rows: 16, cols: 16 };

/**
 * A register-blocked matmul. The vec4 kernel when the operands allow it (see `vec4Design`),
 * else the general scalar kernel. Neither uses workgroup memory: on llvmpipe register blocking
 * is what pays (shared-memory tiling measured slower). `outs` are the roots' locations. With a
 * fused epilogue (`plan.matmul`), each output element's accumulator is also (or only) fed to the
 * epilogue, whose value is stored at the same element of its own root.
 */
export function generateMatmul(
  plan: KernelPlan,
  e: Emitter,
  outs: readonly Location[],
  declare: Declare,
  workgroupSize: number,
): KernelSource {
  const root = plan.matmul ?? plan.roots[0];
  const stores = plan.roots.map((r, i): Store =>
    r === root ? { at: outs[i] } : { at: outs[i], root: r, epilogue: epilogueOf(r, root, e) },
  );
  const design = vec4Design(root, plan.roots, e.locate, outs);
  if (design === undefined) return scalarMatmul(root, e, stores, declare, workgroupSize);
  return vec4Matmul(root, e, stores, design, declare, workgroupSize);
}

/**
 * What a matmul kernel stores at each output element, and where: the product itself (no
 * epilogue), or a fused epilogue's value given the element's accumulator and index (WGSL i32).
 */
interface Store {
  readonly at: Location;
  /** The epilogue's root (the node stored), absent when the product itself is. */
  readonly root?: Node;
  readonly epilogue?: (acc: string, index: readonly string[]) => string;
}

/**
 * A fused epilogue's value at one output element: `root` evaluated at `index`, the product read
 * from the accumulator through a register (the emitter refuses any other index). bool results
 * are stored as i32 0/1.
 */
function epilogueOf(root: Node, product: Node, e: Emitter): Store['epilogue'] {
  return (acc, index) => {
    e.registers.set(product.id, { name: acc, index });
    const value = e.value(root, index);
    return root.dtype === 'bool' ? `select(0i, 1i, ${value})` : value;
  };
}

/**
 * Emits `body`, inside `if (guard)` when there is a guard (so nothing in it runs past the edge).
 */
function guarded(e: Emitter, guard: readonly string[], body: () => void): void {
  if (guard.length === 0) return body();
  const lines = e.block(body);
  e.line(`if (${guard.join(' && ')}) {`);
  lines.forEach((l) => e.line(`  ${l}`));
  e.line('}');
}

/**
 * Each invocation computes a TM×TN tile of outputs, loading TM values of a and TN of b per k
 * (operands are index arithmetic over buffers, inlined). Rows and columns past the edge are
 * clamped for loading and skipped when storing.
 */
function scalarMatmul(
  root: Node,
  e: Emitter,
  stores: readonly Store[],
  declare: Declare,
  workgroupSize: number,
): KernelSource {
  const [a, b] = root.inputs;
  const r = root.shape.length;
  const [m, n] = root.shape.slice(r - 2);
  const depth = a.shape[r - 1];
  const tm = Math.min(SCALAR_TILE.rows, m);
  const tn = Math.min(SCALAR_TILE.cols, n);
  const space = [...root.shape.slice(0, r - 2), Math.ceil(m / tm), Math.ceil(n / tn)];
  const idx = unravel(e, 'flat', space);
  const batch = idx.slice(0, r - 2);
  const row0 = e.bind(`${idx[r - 2]} * ${tm}i`);
  const col0 = e.bind(`${idx[r - 1]} * ${tn}i`);
  // Clamping is only needed where the last tile runs past the edge.
  const rows = Array.from({ length: tm }, (_, i) =>
    e.bind(m % tm === 0 ? `${row0} + ${i}i` : `min(${row0} + ${i}i, ${m - 1}i)`),
  );
  const cols = Array.from({ length: tn }, (_, j) =>
    e.bind(n % tn === 0 ? `${col0} + ${j}i` : `min(${col0} + ${j}i, ${n - 1}i)`),
  );
  const acc = (i: number, j: number) => `c${i}_${j}`;
  for (let i = 0; i < tm; i++)
    for (let j = 0; j < tn; j++) e.line(`var ${acc(i, j)} = ${literal(0, root.dtype)};`);
  const k = e.fresh('k');
  const body = e.block(() => {
    const as = rows.map((row) => e.value(a, [...batch, row, k]));
    const bs = cols.map((col) => e.value(b, [...batch, k, col]));
    for (let i = 0; i < tm; i++)
      for (let j = 0; j < tn; j++) e.line(`${acc(i, j)} = ${acc(i, j)} + ${as[i]} * ${bs[j]};`);
  });
  e.line(`for (var ${k} = 0i; ${k} < ${depth}i; ${k}++) {`);
  body.forEach((l) => e.line(`  ${l}`));
  e.line('}');
  const strides = stridesOf(root.shape);
  const base = batch.map((v, i) => `${v} * ${strides[i]}i`).join(' + ') || '0i';
  // Stores and epilogues are written for one row (emitRowLoop). An epilogue reads the output
  // element's own index: unclamped (stores past the edge are skipped).
  const t = e.fresh('r');
  const rowBody = e.block(() => {
    const row = e.bind(`${row0} + ${t}`);
    for (let j = 0; j < tn; j++) {
      const col = n % tn === 0 ? cols[j] : e.bind(`${col0} + ${j}i`);
      const guard = n % tn === 0 ? [] : [`${col} < ${n}i`];
      // Epilogues are evaluated outside the guard, so what they share across the row's elements
      // (per-call scalars, constants, the row's loads) is emitted once; past the edge they read
      // clamped or unused values and nothing is stored.
      const values = stores.map(({ epilogue }) =>
        epilogue === undefined ? acc(0, j) : e.bind(epilogue(acc(0, j), [...batch, row, col])),
      );
      guarded(e, guard, () =>
        stores.forEach(({ at }, s) =>
          e.line(e.storeElement(at, `${base} + ${row} * ${n}i + ${col}`, values[s])),
        ),
      );
    }
  });
  emitRowLoop(e, { counter: t, type: 'i32', rows: tm, columns: tn }, rowBody, (r) =>
    m % tm === 0 ? '' : `${row0} + ${r} < ${m}i`,
  );
  return assemble(declare(new Set()), e.lines(), shapeSize(space), workgroupSize);
}

/**
 * The store loop of both kernels: `body` (the stores of the tile's first row) runs once per row of
 * the tile, inside `if (guard)` when rows may pass the edge, and each pass then moves every row's
 * accumulators `c<i>_<j>` up one row. The code the driver compiles is one row's, not the whole
 * tile's: on llvmpipe 2-6x faster to compile than unrolled stores, run time unchanged within noise
 * (an array of the accumulators indexed by the row instead compiled twice as slowly as unrolled
 * stores). The trip count is read from the offsets uniform: with a literal one the driver unrolls
 * a small body again.
 */
function emitRowLoop(
  e: Emitter,
  tile: { counter: string; type: 'i32' | 'u32'; rows: number; columns: number },
  body: readonly string[],
  guardOf: (row: string) => string,
): void {
  const { counter: t, type, rows, columns } = tile;
  const count = e.dimension('tile rows', rows);
  e.line(
    `for (var ${t} = 0${type[0]}; ${t} < ${type === 'u32' ? count : `i32(${count})`}; ${t}++) {`,
  );
  const guard = guardOf(t);
  if (guard !== '') e.line(`  if (${guard}) {`);
  body.forEach((l) => e.line(guard !== '' ? `    ${l}` : `  ${l}`));
  if (guard !== '') e.line('  }');
  for (const i of range(rows - 1))
    for (const j of range(columns)) e.line(`  c${i}_${j} = c${i + 1}_${j};`);
  e.line('}');
}

/**
 * How the vec4 kernel reads the operands. 'rows': b's rows as vec4s (4 consecutive columns) and
 * a one element at a time, through its strided view (by component when a shares a vec4 binding)
 * or, for what no view expresses (pad), through the emitter's index arithmetic (a: undefined).
 * 'dot': b given transposed, so a's rows and b's columns are read as vec4s along k and
 * accumulated with dot products.
 */
type Vec4Design =
  | {
      readonly kind: 'rows';
      readonly a: StridedView | undefined;
      readonly b: StridedView;
      readonly vec4: ReadonlySet<string>;
    }
  | {
      readonly kind: 'dot';
      readonly a: StridedView;
      readonly b: StridedView;
      readonly vec4: ReadonlySet<string>;
    };

/**
 * The vec4 kernel needs f32 (the product and what is stored), n % 4 == 0 (c's rows start on
 * vec4s: its binding is vec4-typed), and b strided with 4 consecutive columns on vec4
 * boundaries, or given transposed with k % 4 == 0 and both operands' rows 4 consecutive k on
 * vec4 boundaries. Every region starts on a vec4
 * (memory/layout.ts), so only view offsets and strides need checking. A binding has one element
 * type: b's and c's are vec4, and a is read through its binding's type.
 */
function vec4Design(
  root: Node,
  stored: readonly Node[],
  locate: Locate,
  outs: readonly Location[],
): Vec4Design | undefined {
  const [a, b] = root.inputs;
  const r = root.shape.length;
  const n = root.shape[r - 1];
  const depth = a.shape[r - 1];
  if (
    root.dtype !== 'f32' ||
    stored.some((n) => n.dtype !== 'f32') ||
    n % 4 !== 0 ||
    shapeSize(root.shape) === 0 ||
    depth === 0
  )
    return undefined;
  // [batch…, 0, 0] of every batch on a vec4 boundary, and rows along `axis` (not `other`) of vec4s.
  const vec4Rows = (v: StridedView, axis: number, other: number) =>
    (v.at.offset + v.base) % 4 === 0 &&
    v.strides.slice(0, r - 2).every((s) => s % 4 === 0) &&
    v.strides[axis] === 1 &&
    v.strides[other] % 4 === 0;
  const av = stridedView(a, locate);
  const bv = stridedView(b, locate);
  if (bv === undefined) return undefined;
  if (vec4Rows(bv, r - 1, r - 2)) {
    const vec4 = new Set([bv.at.name, ...outs.map((o) => o.name)]);
    // What no view expresses is read through the emitter, which knows scalar bindings only.
    if (av === undefined && vec4.has(bufferOf(a, locate) ?? '')) return undefined;
    return { kind: 'rows', a: av, b: bv, vec4 };
  }
  if (
    depth % 4 === 0 &&
    av !== undefined &&
    vec4Rows(bv, r - 2, r - 1) &&
    vec4Rows(av, r - 1, r - 2)
  ) {
    return {
      kind: 'dot',
      a: av,
      b: bv,
      vec4: new Set([av.at.name, bv.at.name, ...outs.map((o) => o.name)]),
    };
  }
  return undefined;
}

/** The binding that movement node `node` reads. */
function bufferOf(node: Node, locate: Locate): string | undefined {
  for (let n = node; ; n = n.inputs[0]) {
    const at = locate(n);
    if (at !== undefined || n.inputs.length === 0) return at?.name;
  }
}

/**
 * Each invocation computes a 16×16 tile. 'rows': 16 rows × 4 vec4 accumulators; per k, b's 4
 * vec4s of the tile's columns times each of a's 16 values (no k-unrolling: it measured slower;
 * a read as vec4s along k measured no faster than scalar loads). 'dot': 16 × 16 scalar
 * accumulators of dot products over 4 k per iteration. Indices are u32 (no sign tests in the
 * bounds clamps). Edge tiles clamp their loads and guard their stores, which (with any fused
 * epilogue) are written once, in a loop over the tile's rows.
 */
function vec4Matmul(
  root: Node,
  e: Emitter,
  stores: readonly Store[],
  d: Vec4Design,
  declare: Declare,
  workgroupSize: number,
): KernelSource {
  const a = root.inputs[0];
  // what the emitter reads (a padded a, the epilogue's inputs) may share these
  e.vec4Bindings = d.vec4;
  const r = root.shape.length;
  const [m, n] = root.shape.slice(r - 2);
  const depth = a.shape[r - 1];
  const tm = Math.min(VEC4_TILE.rows, m);
  const tn = Math.min(VEC4_TILE.cols, n); // a multiple of 4, as n is
  const groups = tn / 4;
  const space = [...root.shape.slice(0, r - 2), Math.ceil(m / tm), Math.ceil(n / tn)];
  const bind = (x: string) => (/^[0-9]+u$/.test(x) ? x : e.bind(x));
  // A plain product (no epilogue, no batch) of the 'rows' design reads its sizes and strides from
  // the offsets uniform: every such product of one tile shape and access pattern is one WGSL text,
  // one pipeline for the driver to compile (a Newton–Schulz step's two products, the statistics
  // and preconditioning of layers of any width, a or its transpose). Strides of 0 stay literal;
  // unit strides and edge clamps are written as for any size, so they do not split the text.
  const runtime =
    r === 2 && d.kind === 'rows' && d.a !== undefined && stores.every((st) => !st.epilogue);
  const dim = (key: string, value: number) => (runtime ? e.dimension(key, value) : `${value}u`);
  const scaledBy = (x: string, s: number, key: string) =>
    runtime && s !== 0 && x !== '0u'
      ? `${/^[A-Za-z0-9_.]+$/.test(x) ? x : `(${x})`} * ${dim(key, s)}`
      : scaled(x, s);
  const idx = runtime
    ? ((flat) => [
        bind(`${flat} / ${dim('tiles.n', space[1])}`),
        bind(`${flat} % ${dim('tiles.n', space[1])}`),
      ])(e.bind('u32(flat)'))
    : unravel(e, 'flat', space).map((x) => (x === '0i' ? '0u' : e.bind(`u32(${x})`)));
  const batch = idx.slice(0, r - 2);
  const rowClamp = runtime || m % tm !== 0;
  const colClamp = runtime || n % tn !== 0;
  const row0 = bind(scaled(idx[r - 2], tm));
  const group0 = bind(scaled(idx[r - 1], groups)); // the tile's first column / 4
  const row = (i: number) =>
    rowClamp ? `min(${sum(row0, `${i}u`)}, ${dim('m - 1', m - 1)})` : `(${sum(row0, `${i}u`)})`;
  // Where a view's [batch…, 0, 0] is, in units of `unit` elements.
  const origin = (v: StridedView, unit: 1 | 4, key: string) =>
    bind(
      sum(
        e.offset(v.at, unit),
        runtime ? dim(key, v.base / unit) : `${v.base / unit}u`,
        ...batch.map((x, i) => scaled(x, v.strides[i] / unit)),
      ),
    );
  const k = e.fresh('k');
  const loop = (count: number, emit: () => void) => {
    const body = e.block(emit);
    e.line(`for (var ${k} = 0u; ${k} < ${dim('depth', count)}; ${k}++) {`);
    body.forEach((l) => e.line(`  ${l}`));
    e.line('}');
  };
  let result: (i: number, g: number) => string; // the vec4 of row i, column group g
  let rowAccumulators: number; // accumulators per row of the tile, named c<row>_<j>

  if (d.kind === 'dot') {
    const { a: A, b: B } = d;
    const ao = origin(A, 4, 'a.base');
    const bo = origin(B, 4, 'b.base');
    const arows = range(tm).map((i) => bind(sum(ao, scaled(row(i), A.strides[r - 2] / 4))));
    const bcols = range(tn).map((j) =>
      bind(
        sum(
          bo,
          scaled(
            colClamp
              ? `min(${sum(scaled(group0, 4), `${j}u`)}, ${n - 1}u)`
              : `(${sum(scaled(group0, 4), `${j}u`)})`,
            B.strides[r - 1] / 4,
          ),
        ),
      ),
    );
    const acc = (i: number, j: number) => `c${i}_${j}`;
    for (const i of range(tm)) for (const j of range(tn)) e.line(`var ${acc(i, j)} = 0.0f;`);
    loop(depth / 4, () => {
      const xs = arows.map((at) => e.bind(e.vec4At(A.at, sum(at, k))));
      const ys = bcols.map((at) => e.bind(e.vec4At(B.at, sum(at, k))));
      for (const i of range(tm))
        for (const j of range(tn)) e.line(`${acc(i, j)} = ${acc(i, j)} + dot(${xs[i]}, ${ys[j]});`);
    });
    result = (i, g) =>
      `vec4<f32>(${range(4)
        .map((q) => acc(i, 4 * g + q))
        .join(', ')})`;
    rowAccumulators = tn;
  } else {
    const { a: A, b: B } = d;
    // Column group g: the vec4 of columns 4(group0 + g)…+3 (clamped at the right edge) of row k of
    // b.
    const bo = origin(B, 4, 'b.base');
    const bcols = range(groups).map((g) =>
      bind(
        sum(
          bo,
          colClamp
            ? `min(${group0} + ${g}u, ${dim('n / 4 - 1', n / 4 - 1)})`
            : sum(group0, `${g}u`),
        ),
      ),
    );
    let loadA: () => string[]; // a's tm values at row k, emitted in the loop body
    if (A !== undefined) {
      const ao = origin(A, 1, 'a.base');
      const arows = range(tm).map((i) =>
        bind(sum(ao, scaledBy(row(i), A.strides[r - 2], 'a.row'))),
      );
      // by component when a shares a vec4 binding (e.vec4Bindings is d.vec4)
      loadA = () =>
        arows.map((at) =>
          e.bind(e.component(A.at, bind(sum(at, scaledBy(k, A.strides[r - 1], 'a.k'))))),
        );
    } else {
      const rows = range(tm).map((i) => e.bind(`i32(${row(i)})`));
      const batchI = batch.map((x) => (x === '0u' ? '0i' : e.bind(`i32(${x})`)));
      loadA = () => {
        const ki = e.bind(`i32(${k})`);
        return rows.map((rw) => e.value(a, [...batchI, rw, ki]));
      };
    }
    const acc = (i: number, g: number) => `c${i}_${g}`;
    for (const i of range(tm))
      for (const g of range(groups)) e.line(`var ${acc(i, g)} = vec4<f32>();`);
    loop(depth, () => {
      const bs = bcols.map((at) =>
        e.bind(e.vec4At(B.at, sum(at, scaledBy(k, B.strides[r - 2] / 4, 'b.k')))),
      );
      const as = loadA();
      for (const i of range(tm))
        for (const g of range(groups)) e.line(`${acc(i, g)} = ${acc(i, g)} + ${as[i]} * ${bs[g]};`);
    });
    result = acc;
    rowAccumulators = groups;
  }

  // c's vec4s, row-major: rows past m and column groups past n / 4 are not stored. Stores and
  // fused epilogues are written for one row (emitRowLoop).
  const cStrides = stridesOf(root.shape);
  const origins = stores.map(({ at }) =>
    bind(sum(e.offset(at, 4), ...batch.map((x, i) => scaled(x, cStrides[i] / 4)))),
  );
  // An epilogue runs on the output's vec4s when every epilogue of the kernel can (see
  // vector-epilogue.ts), else per component, at its element's own (i32) index.
  const vectors = stores.map((st) =>
    st.root === undefined ? undefined : vectorEpilogue(st.root, root, e.locate),
  );
  const vector = stores.every((st, s) => st.root === undefined || vectors[s] !== undefined);
  const i32 = (x: string) => (/^[0-9]+u$/.test(x) ? `${x.slice(0, -1)}i` : e.bind(`i32(${x})`));
  const fused = stores.some((st) => st.epilogue !== undefined);
  const batchI = fused ? batch.map(i32) : [];
  const t = e.fresh('r');
  const rowBody = e.block(() => {
    const row = e.bind(sum(row0, t));
    const crows = origins.map((o) => e.bind(sum(o, scaledBy(row, n / 4, 'n / 4'), group0)));
    const rowI = fused ? i32(row) : '';
    const loads = new Map<string, string>();
    for (const g of range(groups)) {
      const group = sum(group0, `${g}u`);
      const guard = colClamp ? [`${group} < ${dim('n / 4', n / 4)}`] : [];
      // Epilogues outside the guard, so what the row's vec4s share is emitted once.
      const values = stores.map(({ epilogue }, s) => {
        if (epilogue === undefined) return result(0, g);
        const cols = range(4).map((q) => i32(sum(scaled(group0, 4), `${4 * g + q}u`)));
        const v = vectors[s];
        if (vector && v !== undefined) {
          const out = { batch, row, group };
          return emitVectorEpilogue(
            e,
            v,
            root,
            result(0, g),
            out,
            [...batchI, rowI, cols[0]],
            loads,
          );
        }
        const acc = e.bind(result(0, g));
        return e.bind(
          `vec4<f32>(${range(4)
            .map((q) => epilogue(`${acc}.${'xyzw'[q]}`, [...batchI, rowI, cols[q]]))
            .join(', ')})`,
        );
      });
      guarded(e, guard, () =>
        stores.forEach(({ at }, s) => e.line(e.storeVec4At(at, sum(crows[s], `${g}u`), values[s]))),
      );
    }
  });
  emitRowLoop(e, { counter: t, type: 'u32', rows: tm, columns: rowAccumulators }, rowBody, (r) =>
    rowClamp ? `${row0} + ${r} < ${dim('m', m)}` : '',
  );
  const tiles = shapeSize(space);
  const bound = runtime ? `i32(${dim('tiles', tiles)})` : `${tiles}i`;
  return assemble(declare(d.vec4), e.lines(), tiles, workgroupSize, 'f32', bound);
}
