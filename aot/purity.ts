// `grng compile`'s static purity check: before an optimizer file is imported and traced, find its
// exported defineOptimizer(...) calls and check the functions they are given (init, update,
// validate, report, and the same-file functions those reach) against purity-rules.ts. A definition
// grng cannot see statically (an argument that is not an object literal, an update made by a call)
// is reported under 'impure-call': what cannot be checked is treated as what cannot be trusted.
// Scope: each checked function is a unit with everything nested in it, so a callback inside update
// may accumulate into update's own `let` (it runs synchronously while tracing, as K-FAC's
// `fallbacks = add(…)` does); reading module-level values is allowed, writing them is not.
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import {
  Node,
  Project,
  type CallExpression,
  type ObjectLiteralExpression,
  type SourceFile,
} from 'ts-morph';
import { GrngError } from '../core/errors.js';
import { grngRoot } from './load-source.js';
import {
  allowFlag,
  bindingOf,
  checkFunction,
  functionOf,
  isFunctionNode,
  isModuleBuiltin,
  objectOf,
  strip,
  type FunctionNode,
  type RuleContext,
} from './purity-rules.js';

export type PurityRule =
  | 'outer-assignment'
  | 'argument-mutation'
  | 'nondeterminism'
  | 'io'
  | 'await'
  | 'impure-call'
  | 'unbounded-loop';
export interface PurityViolation {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly rule: PurityRule;
  readonly message: string;
}
export interface OptimizerSite {
  readonly exportName: string;
  readonly file: string;
  readonly line: number;
  readonly column: number;
}
export interface PurityReport {
  /** Every exported optimizer of the file (checked or not: see PurityOptions.exports). */
  readonly optimizers: readonly OptimizerSite[];
  readonly violations: readonly PurityViolation[];
}
export interface PurityOptions {
  /** A project to add the file to (share one across many checks); default: purityProject(). */
  readonly project?: Project;
  /** Module specifiers besides grng's whose functions may be called unchecked ('./my-ops.js'). */
  readonly allowModules?: readonly string[];
  /**
   * The export names to check (default: every exported optimizer), so that one impure export does
   * not block compiling a pure one beside it.
   */
  readonly exports?: readonly string[];
}

/** The entries of a definition that hold code; `report` holds an object of functions. */
const CODE_ENTRIES = ['init', 'update', 'validate'] as const;
/** Folders of grng's source (or build) that a relative import may reach and still be grng. */
const GRNG_DIRS = new Set(['dsl', 'optimizers', 'compiler', 'runtime']);

/**
 * A project for purity checks: no lib files and no module resolution, since the rules need only
 * the binder's name resolution (a checker over the whole program would take seconds to start).
 */
export function purityProject(): Project {
  return new Project({
    skipAddingFilesFromTsConfig: true,
    skipFileDependencyResolution: true,
    compilerOptions: { allowJs: true, noLib: true, noResolve: true, types: [] },
  });
}

/** Finds every exported defineOptimizer(...) in `file` and checks the functions it is given. */
export function checkPurity(file: string, options: PurityOptions = {}): PurityReport {
  const path = resolve(file);
  if (!existsSync(path)) throw new GrngError('compile', `${file}: no such file`);
  const project = options.project ?? purityProject();
  const known = project.getSourceFile(path);
  known?.refreshFromFileSystemSync();
  const source = known ?? project.addSourceFileAtPath(path);
  const violations: PurityViolation[] = [];
  const position = (node: Node) => source.getLineAndColumnAtPos(node.getStart());
  const queue: FunctionNode[] = [];
  const seen = new Set<Node>();
  const edges = new Map<FunctionNode, Map<FunctionNode, Node>>();
  const cx: RuleContext = {
    isGrngModule: grngModules(path, options.allowModules ?? []),
    report: (node, rule, message) => violations.push({ file, ...position(node), rule, message }),
    follow: (fn) => {
      if (seen.has(fn)) return;
      seen.add(fn);
      queue.push(fn);
    },
    followObject: (object) => {
      if (seen.has(object)) return;
      seen.add(object);
      checkEntries(object, cx, false);
    },
    refer: (from, to, at) => {
      const out = edges.get(from) ?? new Map<FunctionNode, Node>();
      if (!out.has(to)) out.set(to, at);
      edges.set(from, out);
    },
  };
  const sites = exportedOptimizers(source);
  const only = options.exports;
  const checked = only === undefined ? sites : sites.filter((s) => only.includes(s.exportName));
  for (const call of new Set(checked.map((s) => s.call))) checkDefinition(call, cx);
  for (let i = 0; i < queue.length; i++) checkFunction(queue[i] as FunctionNode, cx);
  reportRecursion(edges, cx);
  return {
    optimizers: sites.map(({ exportName, call }) => ({ exportName, file, ...position(call) })),
    violations: unique(violations),
  };
}

/** "file:line:col: message" lines, like a compiler. */
export function formatViolations(violations: readonly PurityViolation[]): string {
  return violations.map((v) => `${v.file}:${v.line}:${v.column}: ${v.message}`).join('\n');
}

/** Sorted by position, one per position and rule (a helper reached twice is reported once). */
function unique(violations: readonly PurityViolation[]): PurityViolation[] {
  const byKey = new Map(violations.map((v) => [`${v.line}:${v.column}:${v.rule}`, v] as const));
  return [...byKey.values()].sort((a, b) => a.line - b.line || a.column - b.column);
}

/**
 * Whether a module specifier, imported from `file`, is grng: 'grng', 'grng/…', allowed, or a path
 * into grng's tree.
 */
function grngModules(file: string, allow: readonly string[]): (specifier: string) => boolean {
  const root = grngRoot().root;
  const bases = [root, join(root, 'dist')];
  return (specifier) => {
    if (specifier === 'grng' || specifier.startsWith('grng/') || allow.includes(specifier))
      return true;
    if (!specifier.startsWith('.')) return false;
    const target = resolve(dirname(file), specifier).replace(/\.[mc]?[jt]sx?$/, '');
    return bases.some((base) => {
      const inside = relative(base, target);
      if (inside === '' || inside.startsWith('..') || isAbsolute(inside)) return false;
      return (
        inside === 'index' || inside === 'testing' || GRNG_DIRS.has(inside.split(sep)[0] as string)
      );
    });
  };
}

/** The defineOptimizer(...) calls the file exports, with their export names, in source order. */
function exportedOptimizers(source: SourceFile): { exportName: string; call: CallExpression }[] {
  const byName = new Map<string, CallExpression>();
  const sites: { exportName: string; call: CallExpression }[] = [];
  for (const statement of source.getVariableStatements()) {
    for (const decl of statement.getDeclarations()) {
      const call = definitionCall(decl.getInitializer());
      if (call === undefined || !Node.isIdentifier(decl.getNameNode())) continue;
      byName.set(decl.getName(), call);
      if (statement.isExported()) sites.push({ exportName: decl.getName(), call });
    }
  }
  for (const declaration of source.getExportDeclarations()) {
    if (declaration.getModuleSpecifier() !== undefined) continue;
    for (const specifier of declaration.getNamedExports()) {
      const call = byName.get(specifier.getNameNode().getText());
      if (call !== undefined)
        sites.push({
          exportName: specifier.getAliasNode()?.getText() ?? specifier.getName(),
          call,
        });
    }
  }
  for (const assignment of source.getExportAssignments()) {
    const value = strip(assignment.getExpression());
    const call = Node.isIdentifier(value) ? byName.get(value.getText()) : definitionCall(value);
    if (call !== undefined) sites.push({ exportName: 'default', call });
  }
  return sites.sort((a, b) => a.call.getStart() - b.call.getStart());
}

function definitionCall(init: Node | undefined): CallExpression | undefined {
  const value = init === undefined ? undefined : strip(init);
  if (!Node.isCallExpression(value)) return undefined;
  const callee = strip(value.getExpression());
  const name = Node.isIdentifier(callee)
    ? callee.getText()
    : Node.isPropertyAccessExpression(callee)
      ? callee.getName()
      : undefined;
  return name === 'defineOptimizer' ? value : undefined;
}

function checkDefinition(call: CallExpression, cx: RuleContext): void {
  const [argument] = call.getArguments();
  const literal = argument === undefined ? undefined : objectLiteral(argument, call);
  if (literal === undefined) {
    cx.report(
      argument ?? call,
      'impure-call',
      "defineOptimizer's argument is not an object literal, so grng compile " +
        'cannot check it: write defineOptimizer({ name, hyper, init, update }) ' +
        'in this file',
    );
    return;
  }
  checkEntries(literal, cx, true);
}

/**
 * An object literal written here or held by a same-file variable (`defineOptimizer(DEFINITION)`).
 */
function objectLiteral(e: Node, scope: Node): ObjectLiteralExpression | undefined {
  const x = strip(e);
  if (Node.isObjectLiteralExpression(x)) return x;
  if (!Node.isIdentifier(x)) return undefined;
  const b = bindingOf(x, scope);
  return b.kind === 'outer' || b.kind === 'local' ? objectOf(b.decl) : undefined;
}

/**
 * Follows the functions an object holds. In a definition (`definition` true) the code entries
 * must be checkable and the rest is data; elsewhere any function-valued property is followed.
 */
function checkEntries(object: ObjectLiteralExpression, cx: RuleContext, definition: boolean): void {
  const entries = new Map<string, Node>();
  const collect = (o: ObjectLiteralExpression) => {
    for (const p of o.getProperties()) {
      if (Node.isSpreadAssignment(p)) {
        const inner = objectLiteral(p.getExpression(), o);
        if (inner !== undefined) collect(inner);
        else if (definition && !isTrusted(p.getExpression(), cx))
          cx.report(
            p,
            'impure-call',
            "a spread in defineOptimizer's argument cannot be checked: write init, " +
              'update, validate and report out in the object literal',
          );
      } else {
        const name = propertyName(p.getNameNode());
        if (name !== undefined)
          entries.set(
            name,
            Node.isPropertyAssignment(p)
              ? p.getInitializerOrThrow()
              : Node.isShorthandPropertyAssignment(p)
                ? p.getNameNode()
                : p,
          );
      }
    }
  };
  collect(object);
  for (const [name, value] of entries) {
    if (!definition) checkEntry(name, value, object, cx, false);
    else if ((CODE_ENTRIES as readonly string[]).includes(name))
      checkEntry(name, value, object, cx, true);
    else if (name === 'report') {
      const holder = objectLiteral(value, object);
      if (holder !== undefined) cx.followObject(holder);
      else checkEntry(name, value, object, cx, true);
    }
  }
}

function propertyName(name: Node | undefined): string | undefined {
  if (Node.isIdentifier(name) || Node.isPrivateIdentifier(name) || Node.isNumericLiteral(name))
    return name.getText();
  if (Node.isStringLiteral(name) || Node.isNoSubstitutionTemplateLiteral(name))
    return name.getLiteralValue();
  const computed = Node.isComputedPropertyName(name) ? strip(name.getExpression()) : undefined;
  return Node.isStringLiteral(computed) ? computed.getLiteralValue() : undefined;
}

/** A name imported from grng (its code is grng's, checked by grng's own tests). */
function isTrusted(e: Node, cx: RuleContext): boolean {
  const x = strip(e);
  if (!Node.isIdentifier(x)) return false;
  const b = bindingOf(x, x);
  return b.kind === 'import' && cx.isGrngModule(b.module);
}

/**
 * One entry's value: a function to check, a same-file function, a grng import, or nothing
 * checkable.
 */
function checkEntry(
  name: string,
  value: Node,
  scope: Node,
  cx: RuleContext,
  strict: boolean,
): void {
  const x = isFunctionNode(value) ? value : strip(value);
  if (isFunctionNode(x)) return cx.follow(x);
  if (Node.isIdentifier(x)) {
    const b = bindingOf(x, scope);
    if (b.kind === 'global' && x.getText() === 'undefined') return;
    if (b.kind === 'import' && cx.isGrngModule(b.module)) return;
    if (b.kind === 'import' && strict)
      return cx.report(
        x,
        'impure-call',
        `${name} is \`${x.getText()}\` from '${b.module}', which grng compile ` +
          `cannot check: declare it in this ` +
          `file${isModuleBuiltin(b.module) ? '' : ` or allow the module (${allowFlag(b.module)})`}`,
      );
    const fn = b.kind === 'outer' || b.kind === 'local' ? functionOf(b.decl) : undefined;
    if (fn !== undefined) return cx.follow(fn);
    const object = b.kind === 'outer' || b.kind === 'local' ? objectOf(b.decl) : undefined;
    if (object !== undefined && !strict) return cx.followObject(object);
  }
  if (strict && !Node.isNullLiteral(x))
    cx.report(
      x,
      'impure-call',
      `${name} is not a function grng compile can find statically: write it ` +
        `here as a function, or name a function declared in this file`,
    );
}

/**
 * A reference that closes a cycle of same-file functions is recursion: no trip count known at trace
 * time.
 */
function reportRecursion(
  edges: ReadonlyMap<FunctionNode, ReadonlyMap<FunctionNode, Node>>,
  cx: RuleContext,
): void {
  const reaches = (
    from: FunctionNode,
    to: FunctionNode,
    seen = new Set<FunctionNode>(),
  ): boolean => {
    if (from === to) return true;
    seen.add(from);
    return [...(edges.get(from)?.keys() ?? [])].some(
      (next) => !seen.has(next) && reaches(next, to, seen),
    );
  };
  for (const [from, out] of edges) {
    for (const [to, at] of out) {
      if (!reaches(to, from)) continue;
      const how =
        from === to
          ? `\`${at.getText()}\` calls itself`
          : `\`${at.getText()}\` calls back into the function that calls it`;
      cx.report(
        at,
        'unbounded-loop',
        `${how}: recursion has no trip count known at trace time; use for (let ` +
          `i = 0; i < n; i++) or for…of over an array, and over a tree of tensors ` +
          `grng's treeMap (ctx.map), treeLeaves, treeSum or globalNorm`,
      );
    }
  }
}
