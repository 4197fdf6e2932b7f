import type { Node } from '../ir/node.js';
import type { Primitive } from '../ir/primitives.js';
import { bitwiseRules } from './bitwise.js';
import { elementwiseRules } from './elementwise.js';
import { gatherRules } from './gather.js';
import { leafRules } from './leaves.js';
import { matmulRules } from './matmul.js';
import { movementRules } from './movement.js';
import { reduceRules } from './reduce.js';
import { solverRules } from './solvers.js';
import { windowsRules } from './windows.js';
import type { OpRule, RuleTable } from './rule.js';

/**
 * The op table: every primitive's rules, found from one entry. The annotation makes a
 * primitive of `PrimitiveAttrs` without a complete rule set a type error.
 */
export const opTable: RuleTable<Primitive> = {
  ...leafRules,
  ...elementwiseRules,
  ...bitwiseRules,
  ...movementRules,
  ...windowsRules,
  ...gatherRules,
  ...reduceRules,
  ...matmulRules,
  ...solverRules,
};

export const PRIMITIVES = Object.keys(opTable) as Primitive[];

/**
 * The rule of `node`'s primitive. A runtime key cannot narrow the table's per-primitive types,
 * so callers get the rule typed for any primitive (each entry is still checked against its own
 * primitive where it is defined).
 */
export function ruleOf(node: Node): OpRule<Primitive> {
  return opTable[node.op];
}
