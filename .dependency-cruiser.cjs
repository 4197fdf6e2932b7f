// grng's layering (docs/architecture.md, "Layers"), checked by `npm run lint` and CI.
// Each rule names a layer and the folders it must not import; a layer may import only the
// layers below it. Paths are relative to the repository root.
const LIBRARY_TOP = '^(aot|testing|cli|bench|examples|scripts)/|^(index|testing)\\.ts$';

/** A rule forbidding `from` to import anything matching `to`. */
function forbid(name, comment, from, to) {
  return { name, comment, severity: 'error', from: { path: from }, to: { path: to } };
}

module.exports = {
  forbidden: [
    forbid(
      'core-imports-nothing-above',
      'core/ (IR, op table, errors, host arrays, trees) is the base layer: it imports only core/.',
      '^core/',
      '^(dsl|compiler|runtime|optimizers|test)/|' + LIBRARY_TOP,
    ),
    forbid(
      'dsl-imports-core-only',
      'dsl/ (Tensor, ops, nn, autodiff, defineOptimizer) builds on core/ alone.',
      '^dsl/',
      '^(compiler|runtime|optimizers|test)/|' + LIBRARY_TOP,
    ),
    forbid(
      'compiler-imports-core-only',
      'compiler/ (passes, fusion, memory plans, WGSL) turns core IR into plans; it never sees the DSL.',
      '^compiler/',
      '^(dsl|runtime|optimizers|test)/|' + LIBRARY_TOP,
    ),
    forbid(
      'runtime-below-optimizers',
      'runtime/ runs any optimizer; it must not know the built-in ones.',
      '^runtime/',
      '^(optimizers|test)/|' + LIBRARY_TOP,
    ),
    forbid(
      'optimizers-import-dsl-only',
      'An optimizer is pure math written in the DSL: no runtime, compiler, WGSL or test hooks.',
      '^optimizers/',
      '^(core|compiler|runtime|test)/|' + LIBRARY_TOP,
    ),
    forbid(
      'aot-below-the-tools',
      'aot/ (grng compile) sits above runtime/ and optimizers/ and below the CLI.',
      '^aot/',
      '^(testing|cli|bench|examples|scripts|test)/|^testing\\.ts$',
    ),
    forbid(
      'testing-is-library',
      'grng/testing is shipped: it must not reach the CLI, benchmarks, examples or the test suites.',
      '^testing(/|\\.ts$)',
      '^(aot|cli|bench|examples|scripts|test)/',
    ),
    forbid(
      'public-api-is-library',
      'index.ts is the public API; it exports the library layers only.',
      '^index\\.ts$',
      '^(aot|testing|cli|bench|examples|scripts|test)/|^testing\\.ts$',
    ),
    forbid(
      'cli-is-not-a-library',
      'Nothing in the shipped library imports the CLI, the bench or the tests.',
      '^(cli|aot)/',
      '^(bench|examples|test)/',
    ),
    forbid(
      'examples-use-the-public-api',
      'Examples are what users copy: they import grng, grng/testing or the package exports only.',
      '^examples/',
      '^(core|dsl|compiler|runtime|optimizers|aot|testing|cli|bench|test)/',
    ),
    {
      name: 'no-unresolved',
      comment:
        'An import that does not resolve would make every rule above silently pass. Scripts ' +
        'that run the built CLI import dist/, which exists only after npm run build.',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true, pathNot: '(^|/)dist/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|dist|test/aot/generated|coverage|reports)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.js', '.mjs', '.cjs', '.d.ts'],
    },
  },
};
