// Imports a user's optimizer file for `grng compile`: transpiles it (TypeScript → JavaScript with
// ts-morph's bundled compiler), points its imports of grng at the grng that is running (so its
// tensors and ours are the same classes), imports it from a temporary file next to the source
// (so its other imports resolve as they would there), and removes the temporary file.
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ts } from 'ts-morph';
import { GrngError } from '../core/errors.js';

/** grng's package root and whether this code runs from its build (dist/) or from source. */
type GrngRoot = {
  root: string;
  fromDist: boolean;
  exports: Readonly<Record<string, { import?: string }>>;
};
let found: GrngRoot | undefined;

export function grngRoot(): GrngRoot {
  found ??= findRoot();
  return found;
}

/**
 * Walks up from this file to grng's package.json (once per process: every import specifier asks).
 */
function findRoot(): GrngRoot {
  const here = fileURLToPath(import.meta.url);
  for (let dir = dirname(here); ; dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as {
        name?: string;
        exports?: Record<string, { import?: string }>;
      };
      if (pkg.name === 'grng')
        return {
          root: dir,
          fromDist: here.startsWith(join(dir, 'dist') + sep),
          exports: pkg.exports ?? {},
        };
    }
    if (dirname(dir) === dir) throw new GrngError('compile', "cannot find grng's own package.json");
  }
}

/**
 * Where `specifier`, imported from `fromDir`, must point so that it loads the running grng
 * (undefined: leave it).
 */
export function runningGrng(specifier: string, fromDir: string): string | undefined {
  const { root, fromDist, exports } = grngRoot();
  // In source mode (tests) modules are .ts files that the test runner transforms.
  const sourceFile = (path: string) => (fromDist ? path : path.replace(/\.js$/, '.ts'));
  if (specifier === 'grng' || specifier.startsWith('grng/')) {
    const target = exports[specifier === 'grng' ? '.' : `./${specifier.slice(5)}`]?.import;
    if (target === undefined)
      throw new GrngError('compile', `'${specifier}' is not an export of grng`);
    return pathToFileURL(
      join(root, fromDist ? target : sourceFile(target.replace(/^\.\/dist\//, './'))),
    ).href;
  }
  if (!specifier.startsWith('.')) return undefined;
  const target = resolve(fromDir, specifier);
  const inside = relative(root, target);
  if (
    inside.startsWith('..') ||
    inside.split(sep)[0] === 'node_modules' ||
    inside.split(sep)[0] === 'dist'
  )
    return undefined;
  return pathToFileURL(fromDist ? join(root, 'dist', inside) : sourceFile(target)).href;
}

/**
 * Imports the TypeScript (or JavaScript) module at `file` with grng's imports pointed at the
 * running grng.
 */
export async function importOptimizerFile(file: string): Promise<Record<string, unknown>> {
  const path = resolve(file);
  if (!existsSync(path)) throw new GrngError('compile', `${file}: no such file`);
  const { outputText, diagnostics } = ts.transpileModule(readFileSync(path, 'utf8'), {
    compilerOptions: {
      module: ts.ModuleKind.ESNext,
      target: ts.ScriptTarget.ES2022,
      sourceMap: false,
    },
    fileName: path,
    reportDiagnostics: true,
  });
  const problem = diagnostics?.find((d) => d.category === ts.DiagnosticCategory.Error);
  if (problem !== undefined)
    throw new GrngError(
      'compile',
      `${file}: ${ts.flattenDiagnosticMessageText(problem.messageText, ' ')}`,
    );
  const dir = dirname(path);
  const code = outputText.replace(
    /(\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(['"])([^'"]+)\2/g,
    (whole, lead: string, quote: string, specifier: string) => {
      const target = runningGrng(specifier, dir);
      return target === undefined ? whole : `${lead}${quote}${target}${quote}`;
    },
  );
  const temp = join(
    dir,
    `.${basename(path).replace(/\.[mc]?[tj]s$/, '')}.grng-compile-${process.pid}.mjs`,
  );
  writeFileSync(temp, code);
  try {
    return (await import(pathToFileURL(temp).href)) as Record<string, unknown>;
  } catch (error) {
    throw new GrngError(
      'compile',
      `${file}: importing it failed: ${(error as Error).message.split('\n')[0]}`,
    );
  } finally {
    rmSync(temp, { force: true });
  }
}
