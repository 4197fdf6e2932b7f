import { GrngError, fmtShape } from '../core/errors.js';
import { topoSort, type Node } from '../core/ir/node.js';
import { shapeSize } from '../core/ir/shape.js';
import { ruleOf } from '../core/ops/table.js';

/** float64: exact reference math. float32: every f32 intermediate rounded, to mirror the GPU. */
export type Precision = 'f64' | 'f32';

export interface InterpretOptions {
  readonly precision?: Precision;
  /**
   * Called with every evaluated node and its value (debugging, and tests that inspect
   * intermediates).
   */
  readonly onNode?: (node: Node, value: Float64Array) => void;
}

/**
 * Evaluates `outputs` given values for their named inputs. Values are row-major Float64Arrays
 * for every dtype (i32 and bool hold exact integers), so one representation serves all rules.
 */
export function interpret(
  outputs: readonly Node[],
  inputs: ReadonlyMap<string, Float64Array>,
  options: InterpretOptions = {},
): Float64Array[] {
  const round = options.precision === 'f32' ? Math.fround : (x: number) => x;
  const values = new Map<number, Float64Array>();
  for (const node of topoSort(outputs)) {
    let value: Float64Array;
    if (node.op === 'input') {
      value = bindInput(node as Node<'input'>, inputs);
      // map, not Float64Array.from(value, fround): that is ten times slower on large inputs
      if (node.dtype === 'f32' && options.precision === 'f32') value = value.map(Math.fround);
    } else {
      const args = node.inputs.map((n) => values.get(n.id) as Float64Array);
      value = ruleOf(node).interpret({ node, inputs: args, round });
    }
    values.set(node.id, value);
    options.onNode?.(node, value);
  }
  return outputs.map((n) => values.get(n.id) as Float64Array);
}

function bindInput(node: Node<'input'>, inputs: ReadonlyMap<string, Float64Array>): Float64Array {
  const { name } = node.attrs;
  const value = inputs.get(name);
  if (value === undefined) {
    const known = [...inputs.keys()].map((k) => `"${k}"`).join(', ') || 'none';
    throw new GrngError(
      'interpret',
      `missing input "${name}" ${fmtShape(node.shape)} ${node.dtype}; given ` +
        `inputs: ${known}. Bind a value for every input() the outputs depend on`,
    );
  }
  if (value.length !== shapeSize(node.shape)) {
    throw new GrngError(
      'interpret',
      `input "${name}" expects ${shapeSize(node.shape)} values for shape ` +
        `${fmtShape(node.shape)}, got ${value.length}`,
    );
  }
  return value;
}
