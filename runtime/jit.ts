import { builder as b, type Node } from '../core/ir/index.js';
import { fmtShape, GrngError } from '../core/errors.js';
import { Tensor, isTensor } from '../dsl/tensor.js';
import { flattenTree, type Tree } from '../core/tree.js';
import type { Device, DeviceArray } from './device.js';
import { HostArray, array } from '../core/host-array.js';

/** What a jitted function accepts: host arrays, device arrays or numbers, in any tree. */
export type ArrayLeaf = HostArray | DeviceArray | number;

/** Device arrays in place of a traced function's result: one for a Tensor, a tree for a tree. */
export type Materialized<R> = R extends Tensor ? DeviceArray : Tree<DeviceArray>;

type Traceable = (...args: never[]) => Tree<Tensor>;

const isDeviceArray = (x: unknown): x is DeviceArray =>
  typeof x === 'object' && x !== null && 'read' in x && 'device' in x;

export function isArrayLeaf(x: unknown): x is ArrayLeaf {
  return (
    typeof x === 'number' ||
    x instanceof HostArray ||
    (typeof x === 'object' && x !== null && 'read' in x && 'device' in x && 'shape' in x)
  );
}

interface Executable {
  readonly inputNames: readonly string[];
  /** The traced input nodes, one per leaf (read by the outputs or not). */
  readonly inputNodes: readonly Node[];
  readonly outputs: readonly Node[];
  readonly rebuild: <M>(leaves: readonly M[]) => Tree<M>;
}

/**
 * Compiles `f` for `device`: traces it once per input signature (tree structure, shapes and
 * dtypes) and returns an async function over arrays that resolves to device arrays.
 */
export function jit<A extends readonly unknown[], R>(
  f: (...args: A) => R,
  options: JitOptions,
): (...args: ArrayArgs<A>) => Promise<Materialized<R>> {
  const { device } = options ?? {};
  const donate = new Set(
    typeof options?.donate === 'number' ? [options.donate] : (options?.donate ?? []),
  );
  if (device === undefined || typeof device.execute !== 'function') {
    throw new GrngError(
      'jit',
      'needs { device }: create one with await createDevice() or createDevice({ kind: "cpu" })',
    );
  }
  const cache = new Map<string, Executable>();
  const run = async (...args: unknown[]) => {
    // f.length counts the parameters before any default or rest one: those must be given.
    if (args.length < f.length) {
      const given = args.map((a) =>
        typeof a === 'object' && a !== null && 'shape' in a && 'dtype' in a
          ? `${String(a.dtype)}${fmtShape(a.shape as number[])}`
          : typeof a,
      );
      throw new GrngError(
        'jit',
        `the function takes ${f.length} argument(s) but was called with ` +
          `${args.length} (${given.join(', ') || 'none'}); pass one array per ` +
          `parameter`,
      );
    }
    const { leaves, rebuild } = flattenTree(
      'jit',
      args,
      isArrayLeaf,
      'an array (array(...), a device array or a number)',
    );
    const arrays = toDevice(device, leaves, 'jit');
    const signature = `${JSON.stringify(rebuild(arrays.map((a) => `${a.dtype}${fmtShape(a.shape)}`)))}`;
    let exe = cache.get(signature);
    if (exe === undefined) {
      exe = traceExecutable(f as unknown as Traceable, rebuild, arrays);
      cache.set(signature, exe);
    }
    const inputs = new Map(exe.inputNames.map((name, i) => [name, arrays[i]] as const));
    const donated = donatedNames(args, donate, exe.inputNames, arrays);
    const argumentOrder =
      donated.size === 0
        ? undefined
        : exe.inputNodes.filter((_, i) => donated.has(exe.inputNames[i]));
    const results = await device.execute(exe.outputs, inputs, { donated, argumentOrder });
    // Arrays uploaded for this call alone are freed now (not at garbage collection), so the next
    // call reuses their memory; results never share it (only donated inputs are handed back).
    arrays.forEach((a, i) => {
      if (!isDeviceArray(leaves[i])) a.dispose();
    });
    return exe.rebuild(results) as Materialized<R>;
  };
  return run as (...args: ArrayArgs<A>) => Promise<Materialized<R>>;
}

export interface JitOptions {
  readonly device: Device;
  /**
   * Positions of arguments whose arrays the call may overwrite (JAX's donate_argnums): outputs
   * of their shape are written in place — how parameters and optimizer state stay resident
   * without copies. Donated arrays are consumed by the call; use its results.
   */
  readonly donate?: number | readonly number[];
}

/** Input names of the donated arguments' leaves; an array passed twice cannot also be donated. */
function donatedNames(
  args: readonly unknown[],
  donate: ReadonlySet<number>,
  names: readonly string[],
  arrays: readonly DeviceArray[],
): Set<string> {
  const out = new Set<string>();
  if (donate.size === 0) return out;
  let k = 0;
  args.forEach((arg, position) => {
    const count = flattenTree('jit', arg, isArrayLeaf, 'an array').leaves.length;
    if (donate.has(position)) for (let i = k; i < k + count; i++) out.add(names[i]);
    k += count;
  });
  for (const position of donate) {
    if (!Number.isInteger(position) || position < 0 || position >= args.length) {
      throw new GrngError(
        'jit',
        `donate lists argument ${position}, but the call has ${args.length} argument(s)`,
      );
    }
  }
  arrays.forEach((a, i) => {
    if (out.has(names[i]) && arrays.some((b, j) => j !== i && b === a)) {
      throw new GrngError(
        'jit',
        `argument array ${i} is donated but also passed elsewhere in the same ` +
          `call; pass a copy or donate neither`,
      );
    }
  });
  return out;
}

/**
 * Arguments in place of the traced function's: an array for a Tensor, a tree of arrays for a tree.
 */
type ArrayArgs<A extends readonly unknown[]> = {
  [K in keyof A]: A[K] extends Tensor ? ArrayLeaf : Tree<ArrayLeaf>;
};

function traceExecutable(
  f: Traceable,
  rebuildArgs: <M>(leaves: readonly M[]) => Tree<M>,
  arrays: readonly DeviceArray[],
): Executable {
  // Inputs are named by position, so the same computation traced by any jitted function is the
  // same hash-consed graph: devices compile it once (the cache is content-addressed).
  const inputNames = arrays.map((_, i) => `%arg${i}`);
  const symbolic = arrays.map((a, i) => new Tensor(b.input(inputNames[i], a.shape, a.dtype)));
  let result: unknown;
  try {
    result = f(...(rebuildArgs(symbolic) as never[]));
  } catch (error) {
    // The op that refused the arguments is deep inside the user's function: its message first,
    // every argument in the details (a training step has dozens).
    if (!(error instanceof GrngError)) throw error;
    const given = arrays.map((a, i) => `argument ${i}: ${a.dtype}${fmtShape(a.shape)}`).join(', ');
    const shown = arrays.length <= 4 ? ` with (${given})` : ` with ${arrays.length} arguments`;
    throw new GrngError(
      'jit',
      `tracing the function${shown} failed — ${error.message}`,
      [`arguments: ${given}`, error.details].filter((d) => d !== undefined).join('\n'),
    );
  }
  const { leaves, rebuild } = flattenTree(
    'jit',
    result,
    isTensor,
    'a Tensor (the function result)',
  );
  return {
    inputNames,
    inputNodes: symbolic.map((t) => t.node),
    outputs: leaves.map((t) => t.node),
    rebuild,
  };
}

/**
 * Device arrays for the call's leaves. Host arrays and numbers are uploaded together, packed
 * into one buffer per type: a call's hyperparameters (lr, step) cost one binding and one write,
 * and, being data, never cause a recompile when they change.
 */
export function toDevice(device: Device, leaves: readonly ArrayLeaf[], op: string): DeviceArray[] {
  const host = leaves.flatMap((leaf, i) =>
    typeof leaf === 'number'
      ? [{ i, value: array(leaf), hostNumber: true }]
      : leaf instanceof HostArray
        ? [{ i, value: leaf, hostNumber: false }]
        : [],
  );
  const uploaded = device.uploadAll(
    host.map(({ value, hostNumber }) => ({
      data: value.data,
      shape: value.shape,
      dtype: value.dtype,
      hostNumber,
    })),
  );
  const out = leaves.slice() as (ArrayLeaf | DeviceArray)[];
  host.forEach(({ i }, k) => (out[i] = uploaded[k]));
  return out.map((leaf) => {
    const arr = leaf as DeviceArray;
    if (arr.device !== device) {
      throw new GrngError(
        op,
        `an argument lives on another device (${arr.device.description}); read ` +
          `it back with await x.read() first`,
      );
    }
    return arr;
  });
}
