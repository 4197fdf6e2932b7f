import { topoSort, type Node } from '../core/ir/node.js';
import { GrngError } from '../core/errors.js';
import { opTable } from '../core/ops/table.js';
import { gateKey, gatesOf, type Gate } from './kernels/gates.js';
import { mergeDependentReductions } from './kernels/merge-reductions.js';
import { fuseMatmulEpilogues } from './kernels/fuse-epilogues.js';
import { mergeIndependent } from './kernels/merge-independent.js';
import { freeEarly } from './kernels/free-early.js';
import { checkedAlone } from './kernels/checked-alone.js';
import { isExternal, partition, type KernelPlan } from './kernels/partition.js';
import { transposedRightOperands } from './kernels/transposed-operands.js';
import { splitLongLoops } from './kernels/loop-budget.js';
import { hoistHostScalars, type HostScalar } from './hoist-host-scalars.js';
import { separateInputs, type InputLayout } from './memory/layout.js';
import {
  arenaThresholds,
  ArenaOverflow,
  bindingElements,
  bufferSplit,
  windowElementsFor,
  type BufferSplit,
} from './memory/buffer-split.js';
import {
  bindingKeys,
  MAX_SCALARS,
  planMemory,
  slotLabel,
  type MemoryPlan,
} from './memory/plan-memory.js';
import {
  fitsOneKernel,
  generateDispatch,
  inPlaceCandidates,
  isWideReduction,
  segmentInvocations,
  wideReductionLanes,
  segmentMode,
  runsByWindow,
  type DispatchSource,
} from './wgsl/kernel.js';

/** The device limits compilation must respect (a subset of GPUSupportedLimits). */
export interface KernelLimits {
  readonly maxStorageBuffersPerShaderStage: number;
  readonly maxComputeInvocationsPerWorkgroup: number;
  readonly maxComputeWorkgroupSizeX: number;
  readonly maxStorageBufferBindingSize?: number;
  /** The largest buffer (default: no limit); arrays past a binding are bound as windows of one. */
  readonly maxBufferSize?: number;
  /** Where a binding into a buffer may start (default 256 bytes, WebGPU's default limit). */
  readonly minStorageBufferOffsetAlignment?: number;
}

export interface CompileOptions {
  readonly limits: KernelLimits;
  /**
   * Fuse elementwise and movement ops into their consumers and kernels into dispatches (default
   * true).
   */
  readonly fuse?: boolean;
  /**
   * Input nodes whose buffers may be overwritten (donated, as JAX's donate_argnums), in argument
   * order.
   */
  readonly donated?: ReadonlySet<number>;
  /**
   * Where the caller's arrays live (which share a buffer, at what offsets); default: one buffer
   * each.
   */
  readonly inputs?: InputLayout;
  /**
   * Every donated argument in order, including ones the graph does not read (ahead-of-time plans):
   * the k-th output of a type then pairs with the k-th such argument, an unread argument's output
   * goes to the results, and no output takes another argument's region — so each result lands
   * where its own argument was, every step.
   */
  readonly argumentOrder?: readonly Node[];
  /**
   * The most invocations a dispatch of several segments (plans of different shapes side by side)
   * may cover; default unlimited. CPU adapters (llvmpipe, SwiftShader) run the branches of a
   * segmented kernel masked — every invocation pays for every segment's code — so there only
   * small plans should share a dispatch and large ones are cheaper as dispatches of their own.
   */
  readonly maxMergedInvocations?: number;
  /**
   * One-element input nodes whose values the caller knows on the host at every call (numbers
   * passed to a jitted function): one-element values computed from them alone are evaluated by
   * the caller once per call (`Program.hostScalars`) instead of by every kernel invocation.
   */
  readonly hostInputs?: ReadonlySet<number>;
}

/** One compute dispatch: its segments (kernel plans), WGSL, and the roots it stores in place. */
export interface CompiledDispatch {
  readonly segments: readonly KernelPlan[];
  readonly source: DispatchSource;
  /** Roots stored into a donated input's region: root id → that input. */
  readonly aliases: ReadonlyMap<number, Node>;
}

/** A compiled graph: dispatches in execution order and where every array lives. */
export interface Program {
  readonly kernels: readonly CompiledDispatch[];
  readonly memory: MemoryPlan;
  /** Buffer-backed leaves the program reads: named inputs and data constants. */
  readonly externals: readonly Node[];
  readonly outputs: readonly Node[];
  /** Values the caller computes each call and writes into the scalars uniform (see hostInputs). */
  readonly hostScalars: readonly HostScalar[];
}

const WORKGROUP_SIZE = 64;

export function compileProgram(traced: readonly Node[], options: CompileOptions): Program {
  const { limits } = options;
  const fuse = options.fuse ?? true;
  // Inputs keep their regions even when only hoisted work reads them. (The unfused reference
  // schedule computes everything where it is.)
  const inputs = topoSort(traced).filter((n) => n.op === 'input');
  const maxBuffers = limits.maxStorageBuffersPerShaderStage;
  const workgroupSize = Math.min(
    WORKGROUP_SIZE,
    limits.maxComputeInvocationsPerWorkgroup,
    limits.maxComputeWorkgroupSizeX,
  );
  // No kernel loops past the budget llvmpipe allows an invocation (kernels/loop-budget.ts).
  const bounded = splitLongLoops(traced, wideReductionLanes(workgroupSize));
  const { outputs, hoisted } = fuse
    ? hoistHostScalars(bounded, options.hostInputs ?? new Set(), MAX_SCALARS)
    : { outputs: bounded, hoisted: [] };
  const placeholders = new Set(hoisted.map((h) => h.placeholder.id));
  const externals = [
    ...inputs,
    ...topoSort(outputs).filter((n) => isExternal(n) && n.op !== 'input'),
  ];
  const layout = options.inputs ?? separateInputs(inputs);
  const bindingBytes = limits.maxStorageBufferBindingSize ?? Infinity;
  const maxElements = bindingElements(bindingBytes);
  const bufferLimits = {
    maxElements,
    windowElements: windowElementsFor(bindingBytes, limits.minStorageBufferOffsetAlignment),
    maxBufferElements: Math.floor((limits.maxBufferSize ?? Infinity) / 4),
  };
  const dataConstants = externals.filter(
    (n) => n.op === 'constant' && 'data' in (n.attrs as object),
  );
  // An elementwise kernel alone in its dispatch runs window by window over arrays longer than a
  // binding (wgsl/kernel.ts, windowPasses): it binds one window of each.
  const byWindow = runsByWindow;

  // Arrays are spread over buffers that fit a binding; when intermediates sharing an arena
  // outgrow one, the large ones get buffers of their own, and kernels are formed again (the
  // number of buffers a kernel binds is what forming them counts).
  for (const ownArenaFrom of arenaThresholds(maxElements)) {
    const split = bufferSplit(outputs, dataConstants, bufferLimits, ownArenaFrom);
    try {
      return compileSplit(split);
    } catch (e) {
      if (!(e instanceof ArenaOverflow)) throw e;
    }
  }
  throw new Error('internal: every intermediate in a buffer of its own still overflowed');

  function compileSplit(split: BufferSplit): Program {
    const bindingKey = bindingKeys(layout, outputs, placeholders, split, inputs);

    // Work needed only under a condition computed on the device is gated on it (the unfused
    // reference schedule runs everything).
    const gates = fuse ? gatesOf(outputs) : new Map<number, Gate>();
    const gateOf = (n: Node) => gateKey(gates.get(n.id));
    const sameGate = (a: Node, b: Node) => gateOf(a) === gateOf(b);
    const partitioned = partition(outputs, {
      fuse,
      maxBuffers,
      bindingKey,
      materialize: new Set([
        ...conditionsOfHeavyWork(outputs, gates),
        ...transposedRightOperands(outputs),
      ]),
      byWindow,
    });
    const plans = fuse
      ? freeEarly(
          fuseMatmulEpilogues(partitioned, outputs, { maxBuffers, bindingKey, sameGate }),
          outputs,
          (plan) => gates.get(plan.roots[0].id)?.node,
        )
      : partitioned;
    const alone = checkedAlone(outputs);
    const dispatches = fuse
      ? mergeIndependent(
          mergeDependentReductions(
            plans,
            maxBuffers,
            fitsOneKernel,
            isWideReduction,
            bindingKey,
            sameGate,
          ),
          {
            maxBuffers,
            bindingKey,
            mode: (plan) => {
              const mode = alone(plan) ? 'alone' : segmentMode(plan);
              return mode === 'alone' ? mode : `${mode}${gateOf(plan.roots[0])}`;
            },
            invocations: segmentInvocations,
            maxMergedInvocations: options.maxMergedInvocations,
            byWindow,
          },
        )
      : plans.map((plan) => ({ segments: [plan] }));
    const donated = options.donated ?? new Set<number>();
    const order = options.argumentOrder;
    const aliases = planInPlace(dispatches, donated, outputs, order);
    const gated = dispatchGates(dispatches, gates);
    const memory = planMemory(
      dispatches.map((d, k) => ({
        roots: d.segments.flatMap((s) => s.roots),
        // A gated dispatch reads its condition too (the device does, just before it).
        inputs: [...d.segments.flatMap((s) => s.inputs), ...(gated[k] ? [gated[k].node] : [])],
        aliases: aliases[k],
      })),
      externals,
      outputs,
      layout,
      { donated, copyBack: copyBacks(aliases, donated, outputs, order), hosted: hoisted },
      split,
    );
    const kernels = dispatches.flatMap((d, k) => {
      const { passes, ...generated } = generateDispatch(d.segments, memory, workgroupSize);
      const condition = gated[k];
      const source =
        condition === undefined
          ? generated
          : {
              ...generated,
              gate: {
                ...regionOf(memory, condition.node),
                condition: condition.node.id,
                when: condition.when,
              },
            };
      const storage = source.bindings.filter((s) => memory.slots[s].kind !== 'scalars');
      if (storage.length > maxBuffers) {
        const bound = storage.map((s) => slotLabel(memory.slots[s])).join(', ');
        throw new GrngError(
          'compile',
          `internal: a dispatch binds ${storage.length} storage buffers ` +
            `(${bound}); the device allows ${maxBuffers}`,
        );
      }
      // A kernel run in passes is one dispatch per pass, each with its own offsets (and range and
      // windows).
      return (passes ?? [{ offsets: source.offsets }]).map((pass) => ({
        segments: d.segments,
        source: {
          ...source,
          offsets: pass.offsets,
          invocations: pass.invocations ?? source.invocations,
          ...(pass.windows === undefined
            ? {}
            : { windows: { of: pass.windows, elements: memory.windowElements } }),
        },
        aliases: aliases[k],
      }));
    });
    return { kernels, memory, externals, outputs, hostScalars: hoisted };
  }
}

/**
 * Conditions gating a product or a reduction: stored, so that the device can read them. (Other
 * gated work is elementwise, inlined into its readers or cheap enough to run regardless.)
 */
function conditionsOfHeavyWork(
  outputs: readonly Node[],
  gates: ReadonlyMap<number, Gate>,
): Set<number> {
  const out = new Set<number>();
  for (const node of topoSort(outputs)) {
    const kind = opTable[node.op].wgsl.kind;
    const gate = gates.get(node.id);
    if (gate !== undefined && (kind === 'matmul' || kind === 'reduce')) out.add(gate.node.id);
  }
  return out;
}

/**
 * Each dispatch's gate: the condition its roots share (merging keeps unlike ones apart), when an
 * earlier dispatch stores it or it is an input; else it runs unconditionally.
 */
function dispatchGates(
  dispatches: readonly { segments: readonly KernelPlan[] }[],
  gates: ReadonlyMap<number, Gate>,
): (Gate | undefined)[] {
  const storedBy = new Map<number, number>();
  dispatches.forEach((d, k) =>
    d.segments.forEach((s) => s.roots.forEach((r) => storedBy.set(r.id, k))),
  );
  return dispatches.map((d, k) => {
    const gate = gates.get(d.segments[0].roots[0].id);
    if (gate === undefined) return undefined;
    const at = storedBy.get(gate.node.id);
    const ready = gate.node.op === 'input' || (at !== undefined && at < k);
    return ready ? gate : undefined;
  });
}

function regionOf(memory: MemoryPlan, node: Node) {
  const region = memory.regions.get(node.id);
  if (region === undefined) throw new Error(`internal: gate condition #${node.id} has no region`);
  return region;
}

/**
 * Chooses in-place updates: a root overwrites a donated input of its shape and dtype when its
 * segment alone reads that input, only at the root's own element, no later dispatch reads the
 * input, and the input is not itself returned. This is how parameters and optimizer state
 * update in place. Outputs are paired with donated inputs of their type in order (as XLA pairs
 * donated buffers), so each result lands where the matching argument was and a step's layout,
 * part of the compiled program's identity, stays the same from one call to the next.
 */
function planInPlace(
  dispatches: readonly { segments: readonly KernelPlan[] }[],
  donated: ReadonlySet<number>,
  outputs: readonly Node[],
  order?: readonly Node[],
): Map<number, Node>[] {
  const outputIds = new Set(outputs.map((n) => n.id));
  const lastRead = new Map<number, number>();
  dispatches.forEach((d, k) =>
    d.segments.forEach((s) => s.inputs.forEach((n) => lastRead.set(n.id, k))),
  );
  const preferred = pairInOrder(outputs, donated, order);
  const sameType = (a: Node, b: Node) =>
    a.dtype === b.dtype &&
    a.shape.length === b.shape.length &&
    a.shape.every((n, i) => n === b.shape[i]);
  return dispatches.map((d, k) => {
    const aliases = new Map<number, Node>();
    if (donated.size === 0) return aliases;
    const free = inPlaceCandidates(d.segments).filter(
      ({ input }) =>
        donated.has(input.id) && !outputIds.has(input.id) && lastRead.get(input.id) === k,
    );
    const roots = d.segments.flatMap((segment, s) => segment.roots.map((root) => ({ root, s })));
    // Preferred pairs first, then any free input of the root's type (not with a fixed argument
    // order).
    for (const pass of order === undefined ? [true, false] : [true]) {
      for (const { root, s } of roots) {
        if (aliases.has(root.id)) continue;
        const j = free.findIndex(
          ({ segment, input }) =>
            segment === s && sameType(input, root) && (!pass || preferred.get(root.id) === input),
        );
        if (j >= 0) aliases.set(root.id, free.splice(j, 1)[0].input);
      }
    }
    return aliases;
  });
}

/**
 * Paired outputs that could not be stored in place (their donated input is read elsewhere in
 * the dispatch that computes them): they are copied into the input's region after the
 * dispatches, so results still land where their arguments were and the layout stays stable.
 */
function copyBacks(
  aliases: readonly ReadonlyMap<number, Node>[],
  donated: ReadonlySet<number>,
  outputs: readonly Node[],
  order?: readonly Node[],
): Map<number, Node> {
  const aliased = new Set(aliases.flatMap((a) => [...a.keys()]));
  const taken = new Set(aliases.flatMap((a) => [...a.values()].map((n) => n.id)));
  const out = new Map<number, Node>();
  for (const [root, input] of pairInOrder(outputs, donated, order)) {
    const node = outputs.find((n) => n.id === root) as Node;
    if (!aliased.has(root) && !taken.has(input.id) && node.op !== 'constant') out.set(root, input);
  }
  return out;
}

/**
 * The k-th returned value of a type paired with the k-th donated input of that type (returned
 * inputs keep their own).
 */
function pairInOrder(
  outputs: readonly Node[],
  donated: ReadonlySet<number>,
  order?: readonly Node[],
): Map<number, Node> {
  const type = (n: Node) => `${n.dtype}[${n.shape.join(',')}]`;
  const returned = new Set(outputs.filter((n) => n.op === 'input').map((n) => n.id));
  // With an argument order, unread arguments hold their place in the queue (undefined: no pair).
  const queues = new Map<string, (Node | undefined)[]>();
  const byId = new Map(topoSort(outputs).map((n) => [n.id, n] as const));
  const candidates =
    order ?? [...donated].flatMap((id) => (byId.has(id) ? [byId.get(id) as Node] : []));
  for (const n of candidates) {
    if (returned.has(n.id)) continue;
    const usable = donated.has(n.id) && byId.has(n.id);
    if (!usable && order === undefined) continue;
    queues.set(type(n), [...(queues.get(type(n)) ?? []), usable ? n : undefined]);
  }
  const pairs = new Map<number, Node>();
  for (const out of outputs) {
    if (out.op === 'input' || pairs.has(out.id)) continue;
    const next = queues.get(type(out))?.shift();
    if (next !== undefined) pairs.set(out.id, next);
  }
  return pairs;
}

/**
 * A readable account of what was built: dispatches and their segments, the buffer plan, and the
 * WGSL.
 */
export function explainProgram(program: Program, withSource = false): string {
  const { slots, regions } = program.memory;
  const where = (n: Node) => {
    const r = regions.get(n.id);
    return r === undefined ? '' : ` @${slots[r.slot].kind}${r.slot}+${r.offset}`;
  };
  const lines = [
    `${program.kernels.length} dispatch(es); buffers: ` +
      `${slots.map((s, i) => `${i}: ${slotLabel(s)}`).join('; ')}`,
  ];
  program.kernels.forEach(({ segments, source, aliases }, i) => {
    const gate =
      source.gate === undefined
        ? ''
        : `, runs when @${slots[source.gate.slot].kind}${source.gate.slot}+${source.gate.offset} is ${source.gate.when}`;
    lines.push(
      `dispatch ${i} (${source.invocations} invocations, ${segments.length} ` +
        `segment(s), binds slots ${source.bindings.join(', ')}${gate}):`,
    );
    for (const { roots, inputs, matmul } of segments) {
      const reads = inputs.map((n) => `${n.op}#${n.id}${where(n)}`).join(', ') || 'nothing';
      const writes = roots
        .map(
          (r) =>
            `${r.op}#${r.id} ${r.dtype}[${r.shape.join(', ')}]${where(r)}${aliases.has(r.id) ? ' (in place)' : ''}`,
        )
        .join(', ');
      // A fused matmul leads the line: its epilogue's root is what is stored.
      lines.push(`  ${matmul === undefined ? '' : `matmul#${matmul.id} ⇒ `}${writes} ← ${reads}`);
    }
    if (withSource) lines.push(source.code);
  });
  return lines.join('\n');
}
