// Name resolution for grng compile's purity rules: where a name is declared, seen from the function
// being checked, through ts-morph's binder only (no types, no lib files), and what a same-file
// value is another name for (`const rand = Math.random`), so an alias is checked as what it names.
import {
  Node,
  SyntaxKind,
  type ArrowFunction,
  type ConstructorDeclaration,
  type FunctionDeclaration,
  type FunctionExpression,
  type GetAccessorDeclaration,
  type MethodDeclaration,
  type ObjectLiteralExpression,
  type SetAccessorDeclaration,
} from 'ts-morph';

export type FunctionNode =
  | ArrowFunction
  | FunctionExpression
  | FunctionDeclaration
  | MethodDeclaration
  | GetAccessorDeclaration
  | SetAccessorDeclaration
  | ConstructorDeclaration;

/** Where a name is declared, seen from the function being checked (`scope`). */
export type Binding =
  | { readonly kind: 'global' }
  | { readonly kind: 'import'; readonly module: string }
  | { readonly kind: 'parameter' | 'local' | 'outer'; readonly decl: Node };

export const GLOBAL: Binding = { kind: 'global' };

export function isFunctionNode(node: Node | undefined): node is FunctionNode {
  return (
    Node.isArrowFunction(node) ||
    Node.isFunctionExpression(node) ||
    Node.isFunctionDeclaration(node) ||
    Node.isMethodDeclaration(node) ||
    Node.isGetAccessorDeclaration(node) ||
    Node.isSetAccessorDeclaration(node) ||
    Node.isConstructorDeclaration(node)
  );
}

/** `e` without parentheses and type-only wrappers (`as`, `!`, `satisfies`, `<T>e`). */
export function strip(e: Node): Node {
  while (
    Node.isParenthesizedExpression(e) ||
    Node.isAsExpression(e) ||
    Node.isNonNullExpression(e) ||
    Node.isSatisfiesExpression(e) ||
    Node.isTypeAssertion(e)
  )
    e = e.getExpression();
  return e;
}

export function bindingOf(id: Node, scope: Node): Binding {
  let decl: Node | undefined;
  try {
    const parent = id.getParent();
    const symbol =
      Node.isShorthandPropertyAssignment(parent) && parent.getNameNode() === id
        ? parent.getValueSymbol()
        : id.getSymbol();
    decl = symbol?.getDeclarations()[0];
  } catch {
    decl = undefined; // an unresolvable name reads as a global
  }
  if (decl === undefined || decl.getSourceFile() !== id.getSourceFile()) return GLOBAL;
  const module =
    Node.isImportSpecifier(decl) || Node.isImportClause(decl) || Node.isNamespaceImport(decl)
      ? decl.getFirstAncestorByKind(SyntaxKind.ImportDeclaration)?.getModuleSpecifierValue()
      : undefined;
  if (module !== undefined) return { kind: 'import', module };
  if (Node.isImportEqualsDeclaration(decl)) {
    const ref = decl.getModuleReference();
    if (Node.isExternalModuleReference(ref))
      return { kind: 'import', module: ref.getExpression()?.getText().slice(1, -1) ?? '' };
  }
  if (decl.getPos() < scope.getPos() || decl.getEnd() > scope.getEnd())
    return { kind: 'outer', decl };
  const holder = decl.getFirstAncestor(
    (a) => Node.isParameterDeclaration(a) || Node.isVariableDeclaration(a),
  );
  return {
    kind:
      Node.isParameterDeclaration(decl) ||
      (Node.isBindingElement(decl) && Node.isParameterDeclaration(holder))
        ? 'parameter'
        : 'local',
    decl,
  };
}

/**
 * The function a declaration names: `function f`, `const f = (…) => …`, a named function
 * expression.
 */
export function functionOf(decl: Node): FunctionNode | undefined {
  if (Node.isFunctionDeclaration(decl) || Node.isFunctionExpression(decl)) return decl;
  const init = Node.isVariableDeclaration(decl) ? decl.getInitializer() : undefined;
  const value = init === undefined ? undefined : strip(init);
  return Node.isArrowFunction(value) || Node.isFunctionExpression(value) ? value : undefined;
}

/** The object literal a declaration holds (`const REPORT = { … }`). */
export function objectOf(decl: Node): ObjectLiteralExpression | undefined {
  const init = Node.isVariableDeclaration(decl) ? decl.getInitializer() : undefined;
  const value = init === undefined ? undefined : strip(init);
  return Node.isObjectLiteralExpression(value) ? value : undefined;
}

/** The name at the root of `a.b[c]`, if it is a name. */
export function rootName(e: Node): Node | undefined {
  let x = strip(e);
  while (Node.isPropertyAccessExpression(x) || Node.isElementAccessExpression(x))
    x = strip(x.getExpression());
  return Node.isIdentifier(x) ? x : undefined;
}

/** What a same-file value is another name for: a name, the members read from it, as written. */
export interface Alias {
  /** The name the chain of aliases ends at (`Math`), and where it is declared. */
  readonly root: Node;
  readonly binding: Binding;
  /** The members read from it, outermost first (`Math.random.bind` → random, bind). */
  readonly members: readonly string[];
  /** The last initializer of the chain, for messages (`Math.random`, `Math.random()`). */
  readonly text: string;
}

/**
 * What a declaration is another name for, through chains of same-file aliases: `const rand =
 * Math.random`, `const { now } = Date`, `const log = console.log.bind(console)`, `const seed =
 * Math.random()` (the value a call made is named by its callee). Undefined for anything else.
 */
export function aliasOf(decl: Node): Alias | undefined {
  const seen = new Set<Node>();
  let members: string[] = [];
  let step = directAlias(decl);
  while (step !== undefined && !seen.has(step.root)) {
    seen.add(step.root);
    members = [...step.members, ...members];
    const binding = bindingOf(step.root, step.root);
    const next =
      binding.kind === 'outer' || binding.kind === 'local' ? directAlias(binding.decl) : undefined;
    if (next === undefined) return { root: step.root, binding, members, text: step.text };
    step = next;
  }
  return undefined;
}

/**
 * One link of an alias chain, read from the syntax alone: the name a declaration's initializer
 * reads, and the members it reads from it.
 */
export function directAlias(
  decl: Node,
): { root: Node; members: string[]; text: string } | undefined {
  if (Node.isBindingElement(decl)) {
    // `const { random: r } = Math`: the property names down the pattern, then the initializer's.
    const members: string[] = [];
    let at: Node = decl;
    while (Node.isBindingElement(at)) {
      const pattern = at.getParentOrThrow();
      members.unshift(
        Node.isArrayBindingPattern(pattern)
          ? '[…]'
          : (at.getPropertyNameNode()?.getText() ?? at.getName()),
      );
      at = pattern.getParentOrThrow();
    }
    const outer = Node.isVariableDeclaration(at) ? directAlias(at) : undefined;
    return (
      outer && {
        root: outer.root,
        members: [...outer.members, ...members],
        text: [outer.text, ...members].join('.'),
      }
    );
  }
  const init = Node.isVariableDeclaration(decl) ? decl.getInitializer() : undefined;
  if (init === undefined) return undefined;
  let x = strip(init);
  if (Node.isCallExpression(x)) x = strip(x.getExpression());
  const members: string[] = [];
  while (Node.isPropertyAccessExpression(x) || Node.isElementAccessExpression(x)) {
    const key = Node.isPropertyAccessExpression(x) ? x.getName() : literalKey(x);
    members.unshift(key);
    x = strip(x.getExpression());
  }
  if (!Node.isIdentifier(x)) return undefined;
  return { root: x, members, text: init.getText().replace(/\s+/g, ' ') };
}

function literalKey(access: Node): string {
  const arg = Node.isElementAccessExpression(access) ? access.getArgumentExpression() : undefined;
  return Node.isStringLiteral(arg) || Node.isNoSubstitutionTemplateLiteral(arg)
    ? arg.getLiteralValue()
    : '[…]';
}
