// The purity rules of `grng compile`, applied to one function body (nested functions included): an
// optimizer's update is traced once into a graph, so anything it does besides computing tensors
// from its arguments (a write to a variable, I/O, a clock, a loop whose trip count is data) would
// be baked into the compiled kernels or silently lost. Names are resolved by ts-morph's binder only
// (no types needed), so the rules work on a project without lib files or module resolution.
import { builtinModules } from 'node:module';
import { Node, SyntaxKind, type ObjectLiteralExpression } from 'ts-morph';
import {
  aliasOf,
  bindingOf,
  directAlias,
  functionOf,
  GLOBAL,
  isFunctionNode,
  objectOf,
  rootName,
  strip,
  type Alias,
  type FunctionNode,
} from './purity-bindings.js';
import type { PurityRule } from './purity.js';

export {
  bindingOf,
  functionOf,
  isFunctionNode,
  objectOf,
  strip,
  type Binding,
  type FunctionNode,
} from './purity-bindings.js';

/** What checkFunction needs from the file-wide check. */
export interface RuleContext {
  readonly isGrngModule: (specifier: string) => boolean;
  report(node: Node, rule: PurityRule, message: string): void;
  /** Checks `fn`, declared in this file outside the function being checked, too (once). */
  follow(fn: FunctionNode): void;
  /**
   * Checks the functions a same-file object literal holds (`const REPORT = { fallbacks: (s) => …
   * }`).
   */
  followObject(object: ObjectLiteralExpression): void;
  /** `from`'s body refers to `to` at `at` (recursion is a cycle of these). */
  refer(from: FunctionNode, to: FunctionNode, at: Node): void;
}

const LOOP =
  'loops need a trip count known at trace time: use for (let i = 0; i < ' +
  'n; i++) or for…of over an array';
const RANDOM =
  "use ctx.key with grng's random functions (uniform, normal, bernoulli, " +
  'randint, categorical; foldIn or split for more keys)';
const CLOCK =
  'update is traced once, so the value would be baked into the compiled ' +
  'program; use ctx.t for the step number';
const NO_IO =
  'an optimizer cannot do I/O: update runs once at trace time, not every ' +
  'step; pass data in as hyperparameters, parameters or state';
const TRACED =
  'update is traced synchronously into a graph of symbolic tensors, so ' +
  'there is nothing to wait for';
const ARRAY_MUTATORS = new Set([
  'push',
  'pop',
  'shift',
  'unshift',
  'splice',
  'sort',
  'reverse',
  'fill',
  'copyWithin',
]);
// `add` is also a Tensor method (x.add(y)), so it counts only on a receiver known to be a Set.
const COLLECTION_MUTATORS = new Set(['set', 'delete', 'clear']);
const OBJECT_MUTATORS: Readonly<Record<string, ReadonlySet<string>>> = {
  Object: new Set(['assign', 'defineProperty', 'defineProperties', 'setPrototypeOf']),
  Reflect: new Set(['set', 'deleteProperty', 'defineProperty', 'setPrototypeOf']),
};
const IO_GLOBALS = new Set([
  'console',
  'fetch',
  'require',
  'XMLHttpRequest',
  'WebSocket',
  'setTimeout',
  'setInterval',
  'setImmediate',
  'queueMicrotask',
  'globalThis',
  'window',
  'document',
  'navigator',
  'localStorage',
  'sessionStorage',
]);
const NODE_BUILTINS = new Set(builtinModules);

const INTERESTING_GLOBALS = [
  'Math',
  'Date',
  'performance',
  'crypto',
  'process',
  'eval',
  'Function',
  ...IO_GLOBALS,
];
const interestCache = new WeakMap<Node, { text: string; names: ReadonlySet<string> }>();

/**
 * The names checkReference can act on in a file: imports, the globals the rules name, and
 * same-file functions, objects and call-made values. Any other name resolves to nothing it checks,
 * so it is skipped without asking the binder (most of the cost on large files).
 */
function namesOfInterest(source: Node): ReadonlySet<string> {
  const text = source.getFullText();
  const cached = interestCache.get(source);
  if (cached !== undefined && cached.text === text) return cached.names;
  const names = new Set<string>(INTERESTING_GLOBALS);
  const aliases: [name: string, root: string][] = [];
  source.forEachDescendant((node) => {
    if (
      Node.isImportSpecifier(node) ||
      Node.isNamespaceImport(node) ||
      Node.isImportEqualsDeclaration(node)
    )
      names.add(node.getNameNode().getText());
    else if (Node.isImportClause(node)) names.add(node.getDefaultImport()?.getText() ?? '');
    else if (
      (Node.isFunctionDeclaration(node) || Node.isFunctionExpression(node)) &&
      node.getName() !== undefined
    )
      names.add(node.getName() as string);
    else if (
      Node.isVariableDeclaration(node) &&
      (functionOf(node) !== undefined || objectOf(node) !== undefined || madeFrom(node).length > 0)
    )
      names.add(node.getName());
    else if (
      (Node.isVariableDeclaration(node) || Node.isBindingElement(node)) &&
      Node.isIdentifier(node.getNameNode()) &&
      node.getFirstAncestor(isFunctionNode) === undefined
    ) {
      const root = directAlias(node)?.root.getText();
      if (root !== undefined) aliases.push([node.getName(), root]);
    }
  });
  // Module-level aliases of names of interest (`const rand = Math.random`), through chains.
  for (let grew = true; grew;) {
    grew = false;
    for (const [name, root] of aliases)
      if (names.has(root) && !names.has(name)) {
        names.add(name);
        grew = true;
      }
  }
  interestCache.set(source, { text, names });
  return names;
}

/**
 * The callee and arguments of the call a module-level const is made by (`const f = grad(g)`), else
 * none.
 */
function madeFrom(decl: Node): Node[] {
  const init = Node.isVariableDeclaration(decl) ? decl.getInitializer() : undefined;
  const value = init === undefined ? undefined : strip(init);
  return Node.isCallExpression(value) ? [value.getExpression(), ...value.getArguments()] : [];
}

/** The same-file function an identifier names, if any. */
function bindingFunction(id: Node): FunctionNode | undefined {
  const b = bindingOf(id, id);
  return b.kind === 'outer' || b.kind === 'local' ? functionOf(b.decl) : undefined;
}

/** How to let calls into `specifier` through, for messages. */
export function allowFlag(specifier: string): string {
  return `grng compile --allow-modules ${specifier}`;
}

export function isModuleBuiltin(specifier: string): boolean {
  return specifier.startsWith('node:') || NODE_BUILTINS.has(specifier);
}

/** A name's text for messages: one line, short. */
function snippet(node: Node, max = 40): string {
  return clip(node.getText(), max);
}

function clip(text: string, max = 40): string {
  const line = text.replace(/\s+/g, ' ');
  return line.length <= max ? line : `${line.slice(0, max - 1)}…`;
}

/** The member read from `id` where it is read (`id.random`, `id['random']`), if any. */
function memberRead(id: Node): string | undefined {
  const parent = id.getParent();
  if (Node.isPropertyAccessExpression(parent) && parent.getExpression() === id)
    return parent.getName();
  const key = Node.isElementAccessExpression(parent) ? parent.getArgumentExpression() : undefined;
  return Node.isStringLiteral(key) ? key.getLiteralValue() : undefined;
}

/** Whether an identifier reads a variable (not a property name, a declared name, a label, …). */
function isValueReference(id: Node): boolean {
  const parent = id.getParent();
  if (parent === undefined) return false;
  if (Node.isPropertyAccessExpression(parent)) return parent.getNameNode() !== id;
  if (Node.isQualifiedName(parent)) return false;
  if (Node.isShorthandPropertyAssignment(parent)) return true;
  if (Node.isBindingElement(parent)) return parent.getInitializer() === id;
  if (
    Node.isLabeledStatement(parent) ||
    Node.isBreakStatement(parent) ||
    Node.isContinueStatement(parent)
  )
    return false;
  if (
    Node.isImportSpecifier(parent) ||
    Node.isImportClause(parent) ||
    Node.isNamespaceImport(parent) ||
    Node.isExportSpecifier(parent)
  )
    return false;
  const named = parent as Node & { getNameNode?: () => Node | undefined };
  try {
    return typeof named.getNameNode !== 'function' || named.getNameNode() !== id;
  } catch {
    return true; // a node whose name getter throws when it has none
  }
}

/**
 * Where a value is reached from, when it is not the function's own: a parameter, an outer binding,
 * `this`.
 */
interface Owner {
  readonly name: string;
  readonly what: string;
}

const OWNER_KINDS: Readonly<Record<string, string>> = {
  parameter: 'a parameter',
  outer: 'declared outside the function',
  import: 'an import',
  global: 'a global',
};
const reached = (owner: Owner) => `a value reached from \`${owner.name}\`, ${owner.what}`;

class FunctionCheck {
  /**
   * Values assigned to each local after its declaration (`x = …`), for alias tracking; built on
   * first use.
   */
  private assignedCache: Map<Node, Node[]> | undefined;

  constructor(
    private readonly fn: FunctionNode,
    private readonly cx: RuleContext,
  ) {}

  private assigned(decl: Node): readonly Node[] {
    if (this.assignedCache === undefined) {
      const found = new Map<Node, Node[]>();
      for (const node of this.fn.getDescendantsOfKind(SyntaxKind.BinaryExpression)) {
        const left = strip(node.getLeft());
        const b =
          isAssignment(node.getOperatorToken().getKind()) && Node.isIdentifier(left)
            ? bindingOf(left, this.fn)
            : GLOBAL;
        if (b.kind === 'local') found.set(b.decl, [...(found.get(b.decl) ?? []), node.getRight()]);
      }
      this.assignedCache = found;
    }
    return this.assignedCache.get(decl) ?? [];
  }

  run(): void {
    this.checkAsync(this.fn);
    this.fn.forEachDescendant((node, traversal) => {
      // Types name no values (skip() returns true, which would stop the walk if returned).
      if (
        (Node.isTypeNode(node) && !Node.isExpressionWithTypeArguments(node)) ||
        Node.isInterfaceDeclaration(node) ||
        Node.isTypeAliasDeclaration(node)
      )
        traversal.skip();
      else this.visit(node);
    });
  }

  private visit(node: Node): void {
    if (Node.isIdentifier(node)) this.checkReference(node);
    else if (Node.isBinaryExpression(node) && isAssignment(node.getOperatorToken().getKind()))
      this.checkTarget(node.getLeft(), '= …');
    else if (
      (Node.isPrefixUnaryExpression(node) || Node.isPostfixUnaryExpression(node)) &&
      (node.getOperatorToken() === SyntaxKind.PlusPlusToken ||
        node.getOperatorToken() === SyntaxKind.MinusMinusToken)
    )
      this.checkTarget(
        node.getOperand(),
        node.getOperatorToken() === SyntaxKind.PlusPlusToken ? '++' : '--',
      );
    else if (Node.isDeleteExpression(node)) this.checkTarget(node.getExpression(), 'delete');
    else if (Node.isForOfStatement(node) || Node.isForInStatement(node)) {
      const init = node.getInitializer();
      if (!Node.isVariableDeclarationList(init)) this.checkTarget(init, '= …');
      if (Node.isForInStatement(node))
        this.cx.report(node, 'unbounded-loop', `for…in is not allowed in an optimizer: ${LOOP}`);
      else if (node.isAwaited())
        this.cx.report(node, 'await', `for await is not allowed in an optimizer: ${TRACED}`);
    } else if (Node.isWhileStatement(node))
      this.cx.report(node, 'unbounded-loop', `while is not allowed in an optimizer: ${LOOP}`);
    else if (Node.isDoStatement(node))
      this.cx.report(node, 'unbounded-loop', `do…while is not allowed in an optimizer: ${LOOP}`);
    else if (Node.isForStatement(node) && node.getCondition() === undefined)
      this.cx.report(
        node,
        'unbounded-loop',
        `for without a condition is not allowed in an optimizer: ${LOOP}`,
      );
    else if (Node.isAwaitExpression(node))
      this.cx.report(node, 'await', `await is not allowed in an optimizer: ${TRACED}`);
    else if (isFunctionNode(node)) this.checkAsync(node);
    else if (Node.isCallExpression(node))
      this.checkCall(node.getExpression(), node, node.getArguments());
    else if (Node.isNewExpression(node)) this.checkCallee(node.getExpression(), node);
    else if (Node.isTaggedTemplateExpression(node)) this.checkCallee(node.getTag(), node);
  }

  private checkAsync(fn: FunctionNode): void {
    if (Node.isAsyncable(fn) && fn.isAsync())
      this.cx.report(
        fn.getAsyncKeyword() ?? fn,
        'await',
        `async functions are not allowed in an optimizer: ${TRACED}`,
      );
  }

  /** A name read in the body: globals and node: imports, and same-file functions to follow. */
  private checkReference(id: Node): void {
    if (!namesOfInterest(id.getSourceFile()).has(id.getText()) || !isValueReference(id)) return;
    const b = bindingOf(id, this.fn);
    if (b.kind === 'global') this.checkGlobal(id, id.getText(), memberRead(id));
    else if (b.kind === 'import' && isModuleBuiltin(b.module))
      this.checkBuiltin(id, `\`${id.getText()}\` comes`, b.module);
    else if (b.kind === 'outer' || b.kind === 'local') {
      const target = functionOf(b.decl);
      if (target !== undefined) {
        if (b.kind === 'outer') this.cx.follow(target);
        this.cx.refer(this.enclosingFunction(id), target, id);
      } else if (b.kind === 'outer') {
        const object = objectOf(b.decl);
        if (object !== undefined) this.cx.followObject(object);
        // `const lossGrad = grad((p) => …)`: the functions a module-level value is made from run
        // when it is called.
        for (const part of madeFrom(b.decl)) {
          const x = strip(part);
          const made = isFunctionNode(x)
            ? x
            : Node.isIdentifier(x)
              ? bindingFunction(x)
              : undefined;
          if (made !== undefined) this.cx.follow(made);
        }
        const alias = aliasOf(b.decl);
        if (alias !== undefined) this.checkAlias(id, b.decl, alias);
      }
    }
  }

  /**
   * A same-file alias read here (`const rand = Math.random; … rand()`) is checked as what it
   * names, and reported where it is read.
   */
  private checkAlias(id: Node, decl: Node, alias: Alias): void {
    const via =
      `\`${id.getText()}\` is \`${clip(alias.text)}\` ` +
      `(declared at line ${decl.getStartLineNumber()})`;
    const b = alias.binding;
    if (b.kind === 'global') {
      const members = [...alias.members, memberRead(id)];
      this.checkGlobal(id, alias.root.getText(), members[0], `${via}: `);
    } else if (b.kind === 'import' && isModuleBuiltin(b.module))
      this.checkBuiltin(id, `${via}, which comes`, b.module);
    else if (b.kind === 'outer' || b.kind === 'local') {
      // `const step = helper`, `const s = HELPERS.step`: the code it names is checked as well.
      const target = functionOf(b.decl);
      const object = objectOf(b.decl);
      if (target !== undefined) {
        this.cx.follow(target);
        this.cx.refer(this.enclosingFunction(id), target, id);
      } else if (object !== undefined) this.cx.followObject(object);
    }
  }

  /** A name from a Node builtin module: clocks and randomness, or I/O. */
  private checkBuiltin(at: Node, what: string, module: string): void {
    const clock = /^(node:)?(crypto|perf_hooks)$/.test(module);
    this.cx.report(
      at,
      clock ? 'nondeterminism' : 'io',
      `${what} from '${module}': ` +
        `${clock ? `an optimizer must be deterministic; ${RANDOM}` : NO_IO}`,
    );
  }

  /** A global read at `at` (`name`, or `name.member`); `prefix` says how, for an alias. */
  private checkGlobal(at: Node, name: string, member: string | undefined, prefix = ''): void {
    const parent = at.getParent();
    const report = (rule: PurityRule, message: string, node = at) =>
      this.cx.report(node, rule, `${prefix}${message}`);
    if (name === 'Math' && member === 'random')
      report('nondeterminism', `Math.random is not allowed in an optimizer: ${RANDOM}`);
    else if (name === 'crypto')
      report('nondeterminism', `crypto is not allowed in an optimizer: ${RANDOM}`);
    else if (
      name === 'Date' ||
      name === 'performance' ||
      (name === 'process' && member === 'hrtime')
    )
      report(
        'nondeterminism',
        `${member === 'hrtime' ? 'process.hrtime' : name} is not allowed in an optimizer: ${CLOCK}`,
        Node.isNewExpression(parent) ? parent : at,
      );
    else if (name === 'process')
      report(
        'io',
        `process is not allowed in an optimizer: pass settings in as ` +
          `hyperparameters (ctx.settings); ${NO_IO}`,
      );
    else if (IO_GLOBALS.has(name)) report('io', `${name} is not allowed in an optimizer: ${NO_IO}`);
    else if (name === 'eval' || name === 'Function')
      report(
        'impure-call',
        `${name} is not allowed in an optimizer: grng compile cannot check ` +
          `code built from strings; write it out`,
      );
  }

  private checkCall(callee: Node, call: Node, args: readonly Node[]): void {
    if (callee.getKind() === SyntaxKind.ImportKeyword) {
      this.cx.report(call, 'io', `dynamic import() is not allowed in an optimizer: ${NO_IO}`);
      return;
    }
    this.checkCallee(callee, call);
    const target = strip(callee);
    if (!Node.isPropertyAccessExpression(target)) return;
    const method = target.getName();
    const receiver = strip(target.getExpression());
    const statics =
      Node.isIdentifier(receiver) && bindingOf(receiver, this.fn).kind === 'global'
        ? OBJECT_MUTATORS[receiver.getText()]
        : undefined;
    if (statics !== undefined) {
      const owner =
        statics.has(method) && args[0] !== undefined ? this.ownerOf(args[0]) : undefined;
      if (owner !== undefined)
        this.cx.report(
          call,
          'argument-mutation',
          `\`${snippet(call)}\` changes ${reached(owner)}: copy instead ({ ` +
            `...${snippet(args[0] as Node, 20)}, … })`,
        );
      return;
    }
    if (
      !ARRAY_MUTATORS.has(method) &&
      !COLLECTION_MUTATORS.has(method) &&
      !(method === 'add' && this.isSet(receiver))
    )
      return;
    const owner = this.ownerOf(receiver);
    if (owner !== undefined)
      this.cx.report(
        call,
        'argument-mutation',
        `\`${snippet(call)}\` changes ${reached(owner)}: build a new array, ` +
          `Map or Set in the function instead ([...xs, x], [...xs].sort())`,
      );
  }

  /** Calls into modules other than grng cannot be checked. */
  private checkCallee(callee: Node, call: Node): void {
    const root = rootName(callee);
    if (root === undefined) return;
    const b = bindingOf(root, this.fn);
    // A module-level value made by a call (`const f = memoize(g)`) runs its maker's code, and an
    // alias (`const dbl = h.double`) the code it names.
    const maker = b.kind === 'outer' ? madeFrom(b.decl)[0] : undefined;
    const makerName = maker === undefined ? undefined : rootName(maker);
    const alias = b.kind === 'outer' && maker === undefined ? aliasOf(b.decl) : undefined;
    const from = makerName !== undefined ? bindingOf(makerName, makerName) : (alias?.binding ?? b);
    if (
      from.kind === 'import' &&
      !isModuleBuiltin(from.module) &&
      !this.cx.isGrngModule(from.module)
    ) {
      const what =
        from === b
          ? `\`${snippet(root)}\` comes`
          : alias !== undefined
            ? `\`${snippet(root)}\` is \`${clip(alias.text)}\``
            : `\`${snippet(root)}\` is made by \`${snippet(makerName as Node)}\``;
      this.cx.report(
        call,
        'impure-call',
        `${what} from '${from.module}', which grng compile cannot check: use ` +
          `grng's ops, declare the helper in this file, or allow the module ` +
          `(${allowFlag(from.module)})`,
      );
    }
  }

  /** An assignment's, ++'s or delete's target. */
  private checkTarget(target: Node, how: string): void {
    const t = strip(target);
    if (Node.isIdentifier(t)) {
      const b = bindingOf(t, this.fn);
      if (b.kind === 'outer' || b.kind === 'global' || b.kind === 'import') {
        this.cx.report(
          t,
          'outer-assignment',
          `assigns to \`${t.getText()}\`, which is declared outside the ` +
            `function: keep what changes between steps in the optimizer's state ` +
            `and return it from update (locals are fine)`,
        );
      }
    } else if (Node.isPropertyAccessExpression(t) || Node.isElementAccessExpression(t)) {
      const owner = this.ownerOf(t.getExpression());
      const shown = how === 'delete' ? `delete ${snippet(t)}` : `${snippet(t)} ${how}`;
      if (owner !== undefined)
        this.cx.report(
          how === 'delete' ? target.getParentOrThrow() : t,
          'argument-mutation',
          `\`${shown}\` changes ${reached(owner)}: build and return new objects ` +
            `instead ({ ...x, key: value })`,
        );
    } else if (Node.isArrayLiteralExpression(t)) {
      for (const e of t.getElements())
        this.checkTarget(
          Node.isSpreadElement(e)
            ? e.getExpression()
            : Node.isBinaryExpression(e)
              ? e.getLeft()
              : e,
          how,
        );
    } else if (Node.isObjectLiteralExpression(t)) {
      for (const p of t.getProperties()) {
        if (Node.isPropertyAssignment(p)) this.checkTarget(p.getInitializerOrThrow(), how);
        else if (Node.isShorthandPropertyAssignment(p)) this.checkTarget(p.getNameNode(), how);
        else if (Node.isSpreadAssignment(p)) this.checkTarget(p.getExpression(), how);
      }
    }
  }

  /**
   * Where the value of `e` comes from when the function does not own it (undefined: built here).
   */
  private ownerOf(e: Node, seen = new Set<Node>()): Owner | undefined {
    const x = strip(e);
    if (Node.isThisExpression(x)) {
      // In a constructor of a class declared here, `this` is the instance being built.
      const holder = x.getFirstAncestor((a) => isFunctionNode(a) && !Node.isArrowFunction(a));
      const own =
        Node.isConstructorDeclaration(holder) &&
        holder.getPos() >= this.fn.getPos() &&
        holder !== this.fn;
      return own ? undefined : { name: 'this', what: 'the object the function belongs to' };
    }
    if (Node.isPropertyAccessExpression(x) || Node.isElementAccessExpression(x))
      return this.ownerOf(x.getExpression(), seen);
    if (Node.isConditionalExpression(x))
      return this.ownerOf(x.getWhenTrue(), seen) ?? this.ownerOf(x.getWhenFalse(), seen);
    if (Node.isBinaryExpression(x)) {
      const op = x.getOperatorToken().getKind();
      if (op === SyntaxKind.CommaToken) return this.ownerOf(x.getRight(), seen);
      if (
        op === SyntaxKind.QuestionQuestionToken ||
        op === SyntaxKind.BarBarToken ||
        op === SyntaxKind.AmpersandAmpersandToken
      )
        return this.ownerOf(x.getLeft(), seen) ?? this.ownerOf(x.getRight(), seen);
      return undefined;
    }
    if (!Node.isIdentifier(x)) return undefined;
    const b = bindingOf(x, this.fn);
    if (b.kind !== 'local') return { name: x.getText(), what: OWNER_KINDS[b.kind] as string };
    if (seen.has(b.decl)) return undefined;
    seen.add(b.decl);
    for (const value of [...initialValues(b.decl), ...this.assigned(b.decl)]) {
      const owner = this.ownerOf(value, seen);
      if (owner !== undefined) return owner;
    }
    return undefined;
  }

  /** Whether a receiver is known to be a Set (declared `new Set(…)` or `: Set<…>`, or typed so). */
  private isSet(receiver: Node): boolean {
    if (Node.isIdentifier(receiver)) {
      const b = bindingOf(receiver, this.fn);
      const decl = b.kind === 'global' || b.kind === 'import' ? undefined : b.decl;
      if (Node.isVariableDeclaration(decl) || Node.isParameterDeclaration(decl)) {
        const init = decl.getInitializer();
        const made = init === undefined ? undefined : strip(init);
        if (
          /^(Readonly|Weak)?Set\b/.test(decl.getTypeNode()?.getText() ?? '') ||
          (Node.isNewExpression(made) && /^(Weak)?Set$/.test(made.getExpression().getText()))
        )
          return true;
      }
    }
    try {
      return /^(Weak)?Set$/.test(receiver.getType().getSymbol()?.getName() ?? '');
    } catch {
      return false;
    }
  }

  /**
   * The nearest named function around `node` inside the checked one (recursion is between named
   * functions).
   */
  private enclosingFunction(node: Node): FunctionNode {
    for (let a = node.getParent(); a !== undefined && a !== this.fn; a = a.getParent()) {
      if (isFunctionNode(a) && isNamedFunction(a)) return a;
    }
    return this.fn;
  }
}

function isAssignment(kind: SyntaxKind): boolean {
  return kind >= SyntaxKind.FirstAssignment && kind <= SyntaxKind.LastAssignment;
}

function isNamedFunction(fn: FunctionNode): boolean {
  if (
    Node.isFunctionDeclaration(fn) ||
    (Node.isFunctionExpression(fn) && fn.getName() !== undefined)
  )
    return true;
  let up = fn.getParent();
  while (
    Node.isParenthesizedExpression(up) ||
    Node.isAsExpression(up) ||
    Node.isSatisfiesExpression(up) ||
    Node.isNonNullExpression(up)
  )
    up = up.getParent();
  return Node.isVariableDeclaration(up);
}

/** The value a local starts with: its initializer, or the array a for…of walks. */
function initialValues(decl: Node): Node[] {
  const variable = Node.isVariableDeclaration(decl)
    ? decl
    : Node.isBindingElement(decl)
      ? decl.getFirstAncestorByKind(SyntaxKind.VariableDeclaration)
      : undefined;
  if (variable === undefined) return [];
  const statement = variable.getParent()?.getParent();
  if (Node.isForOfStatement(statement)) return [statement.getExpression()];
  if (Node.isForInStatement(statement)) return [];
  const init = variable.getInitializer();
  return init === undefined ? [] : [init];
}

/** Applies every rule to `fn`'s body, nested functions included. */
export function checkFunction(fn: FunctionNode, cx: RuleContext): void {
  new FunctionCheck(fn, cx).run();
}
