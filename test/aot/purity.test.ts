// grng compile's static purity check: the corpus (test/aot/corpus, parsed only, never imported)
// marks each expected violation with a /*!rule*/ comment right before the node where it starts,
// so expected positions come from the text and cannot drift; the repository's own optimizers
// must pass as they are.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import {
  checkPurity,
  formatViolations,
  purityProject,
  type PurityReport,
} from '../../aot/purity.js';
import { checkFunction, isFunctionNode, type RuleContext } from '../../aot/purity-rules.js';
import { GrngError } from '../../index.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CORPUS = fileURLToPath(new URL('./corpus/', import.meta.url));
// One project for the whole file: files are parsed once and share one (lib-free) checker.
const project = purityProject();
const check = (file: string, allowModules?: readonly string[]): PurityReport =>
  checkPurity(file, { project, allowModules });

/**
 * The violations a corpus file expects: rule, line and column just after each /*!rule*\/ marker.
 */
function expected(file: string): { rule: string; line: number; column: number }[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/\/\*!([a-z-]+)\*\//g)].map((m) => {
    const at = (m.index as number) + m[0].length;
    const lineStart = text.lastIndexOf('\n', at - 1);
    return {
      rule: m[1] as string,
      line: text.slice(0, at).split('\n').length,
      column: at - lineStart,
    };
  });
}

const positions = (report: PurityReport) =>
  report.violations.map(({ rule, line, column }) => ({ rule, line, column }));
const corpus = (prefix: string) =>
  readdirSync(CORPUS)
    .filter((f) => f.startsWith(prefix) && f.endsWith('.ts'))
    .sort();

describe('corpus', () => {
  test.each(corpus('good-'))('%s has no violations', (name) => {
    expect(check(join(CORPUS, name)).violations).toEqual([]);
  });

  test.each(corpus('bad-'))('%s gives exactly its marked violations', (name) => {
    const file = join(CORPUS, name);
    const report = check(file);
    const want = expected(file);
    expect(want.length).toBeGreaterThan(0);
    expect(positions(report)).toEqual(want);
    expect(report.optimizers.length).toBeGreaterThan(0);
    for (const v of report.violations) {
      expect(v.file).toBe(file);
      expect(v.message).not.toMatch(/\n/);
      expect(v.message.length).toBeGreaterThan(20);
    }
  });

  test('every rule has a bad file of its own', () => {
    const rules = [
      'outer-assignment',
      'argument-mutation',
      'nondeterminism',
      'io',
      'await',
      'impure-call',
      'unbounded-loop',
    ];
    for (const rule of rules) expect(corpus('bad-'), rule).toContain(`bad-${rule}.ts`);
    const several = new Set(positions(check(join(CORPUS, 'bad-several.ts'))).map((v) => v.rule));
    expect(several.size).toBeGreaterThanOrEqual(4);
  });

  test('messages say what to do instead', () => {
    const [random] = check(join(CORPUS, 'bad-nondeterminism.ts')).violations;
    expect(random?.message).toMatch(
      /^Math\.random is not allowed in an optimizer: use ctx\.key with grng's random functions \(uniform, normal/,
    );
    const loop = check(join(CORPUS, 'bad-unbounded-loop.ts')).violations.find((v) =>
      v.message.startsWith('while'),
    );
    expect(loop?.message).toContain('use for (let i = 0; i < n; i++) or for…of over an array');
    const opaque = check(join(CORPUS, 'bad-definition.ts')).violations[0];
    expect(opaque?.message).toContain('not an object literal');
  });

  test('allowModules lets calls into a named module through', () => {
    expect(check(join(CORPUS, 'bad-impure-call.ts'), ['./helpers.js']).violations).toEqual([]);
    // The message names the option, as the command line spells it.
    const [call] = check(join(CORPUS, 'bad-impure-call.ts')).violations;
    expect(call?.message).toContain('(grng compile --allow-modules ./helpers.js)');
  });

  // (The corpus test above also pins that aliases of pure names, root2 and M.PI there, pass.)
  test('a module-level alias is checked as what it names, where update reads it', () => {
    const file = join(CORPUS, 'bad-aliases.ts');
    const text = readFileSync(file, 'utf8').split('\n');
    const declared = (name: string) => text.findIndex((l) => l.startsWith(`const ${name} `)) + 1;
    const messages = check(file).violations.map((v) => v.message);
    expect(messages).toContain(
      `\`rand\` is \`Math.random\` (declared at line ${declared('rand')}): Math.random is not ` +
        "allowed in an optimizer: use ctx.key with grng's random functions (uniform, normal, " +
        'bernoulli, randint, categorical; foldIn or split for more keys)',
    );
    expect(messages.find((m) => m.startsWith('`now`'))).toMatch(
      /^`now` is `Date\.now` \(declared at line \d+\): Date is not allowed in an optimizer/,
    );
    expect(messages.find((m) => m.startsWith('`dbl`'))).toMatch(
      /^`dbl` is `h\.double` from '\.\/helpers\.js', which grng compile cannot check/,
    );
  });

  test('recursion is refused with the tree helpers named as the way out', () => {
    const recursion = check(join(CORPUS, 'bad-unbounded-loop.ts')).violations.filter((v) =>
      v.message.includes('recursion'),
    );
    expect(recursion.length).toBeGreaterThanOrEqual(3);
    for (const v of recursion)
      expect(v.message).toContain("grng's treeMap (ctx.map), treeLeaves, treeSum or globalNorm");
  });

  test('exports limits the check to the named optimizers', () => {
    const file = join(CORPUS, 'bad-one-export.ts');
    const only = (exports: readonly string[]) => checkPurity(file, { project, exports });
    expect(only(['clean']).violations).toEqual([]);
    expect(positions(only(['dirty']))).toEqual(expected(file));
    expect(positions(only(['clean', 'dirty']))).toEqual(expected(file));
    // Every exported optimizer is listed either way, so a caller can say which exist.
    expect(only([]).optimizers.map((o) => o.exportName)).toEqual(['clean', 'dirty']);
    expect(only([]).violations).toEqual([]);
  });

  test('finds exported optimizers under every export form, and only exported ones', () => {
    const names = (file: string) => check(join(CORPUS, file)).optimizers.map((o) => o.exportName);
    expect(names('good-methods.ts')).toEqual(['heavyBall', 'default']);
    expect(names('good-loops.ts')).toEqual(['copyLike']);
    expect(names('bad-definition.ts')).toEqual(['opaque', 'unchecked']);
    expect(names('good-unexported.ts')).toEqual([]);
    const [site] = check(join(CORPUS, 'good-loops.ts')).optimizers;
    const text = readFileSync(join(CORPUS, 'good-loops.ts'), 'utf8');
    const at = text.indexOf('defineOptimizer({');
    expect(site).toMatchObject({
      line: text.slice(0, at).split('\n').length,
      column: at - text.lastIndexOf('\n', at - 1),
    });
  });

  test('formatViolations prints file:line:col: message lines', () => {
    const file = join(CORPUS, 'bad-several.ts');
    const { violations } = check(file);
    const lines = formatViolations(violations).split('\n');
    expect(lines).toHaveLength(violations.length);
    expect(lines[0]).toBe(
      `${file}:${violations[0]?.line}:${violations[0]?.column}: ${violations[0]?.message}`,
    );
    expect(formatViolations([])).toBe('');
  });

  test('a missing file is a GrngError', () => {
    expect(() => check(join(CORPUS, 'no-such-file.ts'))).toThrow(GrngError);
  });
});

describe("the repository's optimizers", () => {
  const OPTIMIZERS: Readonly<Record<string, readonly string[]>> = {
    'optimizers/sgd.ts': ['sgd'],
    'optimizers/adam.ts': ['adam'],
    'optimizers/adamw.ts': ['adamw'],
    'optimizers/kfac.ts': ['kfac'],
    'optimizers/sophia.ts': ['sophia'],
    'optimizers/ring.ts': ['ring'],
    'optimizers/reng.ts': ['reng'],
    'optimizers/rkalman.ts': ['rkalman'],
    'examples/lion.ts': ['lion'],
    'examples/custom-optimizer/adabelief.ts': ['adabelief'],
    'examples/regularized-optimizer/gr-adam.ts': ['grAdam'],
    'test/aot/fixtures/pulsed-sgd.ts': ['pulsedSgd'],
  };

  test.each(Object.keys(OPTIMIZERS))('%s is pure', (file) => {
    const report = check(join(ROOT, file));
    expect(report.optimizers.map((o) => o.exportName)).toEqual(OPTIMIZERS[file]);
    expect(formatViolations(report.violations)).toBe('');
  });
});

describe('robustness', () => {
  // Every TypeScript file of the repository parses and checks without throwing.
  test('checks every source file of the repository without crashing', () => {
    const files: string[] = [];
    const walk = (dir: string) => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        if (
          entry.name.startsWith('.') ||
          entry.name === 'node_modules' ||
          entry.name === 'dist' ||
          entry.name === 'runs'
        )
          continue;
        const path = join(dir, entry.name);
        if (entry.isDirectory()) walk(path);
        else if (/\.m?ts$/.test(entry.name) && !entry.name.endsWith('.d.ts')) files.push(path);
      }
    };
    walk(ROOT);
    expect(files.length).toBeGreaterThan(50);
    const fresh = purityProject();
    // Added up front: each file added later would make the next check rebuild the program.
    for (const file of files) fresh.addSourceFileAtPath(file);
    // The rules also walk every function of every file (whatever syntax it holds) without throwing.
    let reports = 0;
    const cx: RuleContext = {
      isGrngModule: () => true,
      report: () => void reports++,
      follow: () => undefined,
      followObject: () => undefined,
      refer: () => undefined,
    };
    for (const file of files) {
      expect(() => checkPurity(file, { project: fresh }), relative(ROOT, file)).not.toThrow();
      const source = fresh.getSourceFileOrThrow(file);
      // Outermost functions only: nested ones are part of their outermost function's walk.
      const outermost = source
        .getDescendants()
        .filter(
          (node) => isFunctionNode(node) && node.getFirstAncestor(isFunctionNode) === undefined,
        );
      for (const node of outermost)
        expect(
          () => checkFunction(node as Parameters<typeof checkFunction>[0], cx),
          `${relative(ROOT, file)}:${node.getStartLineNumber()}`,
        ).not.toThrow();
    }
    expect(reports).toBeGreaterThan(0);
  });
});
