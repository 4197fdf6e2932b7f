import { opTable, type Builder, type Node } from '../../core/ir/index.js';

// The op table is keyed by primitive; a runtime key cannot narrow it, so autodiff sees one
// generic rule shape. Each rule is still checked against its own primitive where it is defined.
interface AnyRule {
  vjp(b: Builder, node: Node, ct: Node): readonly (Node | null)[];
  jvp(b: Builder, node: Node, tangents: readonly (Node | null)[]): Node | null;
}

export function ruleOf(node: Node): AnyRule {
  return opTable[node.op] as unknown as AnyRule;
}
