// `grng merge`: folds the adapters of a `grng train --lora` run into the weights it started from,
// W + (α/r)·B·A for every adapted layer (with the parameters it trained besides, such as the
// head), and writes them as a plain checkpoint, which `grng train --init` starts from.
import { parseArgs } from 'node:util';
import { GrngError } from '../core/errors.js';
import { isHostArray, type HostArray } from '../core/host-array.js';
import { joinTrees, leafPaths, splitTree } from '../core/tree-paths.js';
import type { Tree } from '../core/tree.js';
import { mergeAdapters } from '../dsl/nn/lora-model.js';
import { loadCheckpoint, saveCheckpoint } from '../runtime/checkpoint.js';

export const MERGE_USAGE = `Usage: grng merge CHECKPOINT --out FILE [--init BASE]

Merges the LoRA adapters of CHECKPOINT (written by grng train --lora) into the parameters the run
started from (its --init file, or BASE) and writes them to FILE as a plain checkpoint.

Options:
  --out FILE         where to write the merged parameters (.safetensors)
  --init BASE        the base checkpoint, when it has moved since the run
  -h, --help         show this help
`;

/** Runs `grng merge` with `argv` (after the command name); returns the exit code. */
export async function merge(
  argv: readonly string[],
  print: (line: string) => void,
): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: {
      out: { type: 'string' },
      init: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    print(MERGE_USAGE);
    return 0;
  }
  if (positionals.length !== 1)
    throw new GrngError('cli', `grng merge takes one checkpoint, got ${positionals.length}`);
  if (values.out === undefined) throw new GrngError('cli', 'grng merge needs --out FILE');
  const [file] = positionals;
  const run = loadCheckpoint(file);
  const lora = run.meta.lora as { rank: number; alpha: number } | undefined;
  if (lora === undefined)
    throw new GrngError('cli', `${file} is not a LoRA run (no adapters to merge)`);
  const basePath = values.init ?? (run.meta.init as string | undefined);
  if (basePath === undefined)
    throw new GrngError(
      'cli',
      `${file} does not say which weights it started from: pass --init BASE`,
    );
  const base = loadCheckpoint(basePath).trees.params;
  const trained = run.trees.params as Tree<HostArray>;
  // The run saved what it trained ({ lora, base: { head } }); the rest of the base is the start's.
  const { base: trainedBase, lora: adapters } = trained as {
    base?: Tree<HostArray>;
    lora: Tree<HostArray>;
  };
  const taken = new Set(
    trainedBase === undefined ? [] : leafPaths('cli', trainedBase, isHostArray, 'an array'),
  );
  const untouched = splitTree('cli', base, isHostArray, (p) => taken.has(p)).rest;
  const fullBase =
    trainedBase === undefined ? base : joinTrees('cli', trainedBase, untouched, isHostArray);
  const merged = mergeAdapters({ base: fullBase, lora: adapters }, lora.alpha / lora.rank);
  await saveCheckpoint(
    values.out,
    { params: merged },
    { ...run.meta, lora: undefined, mergedFrom: file },
  );
  print(`grng merge: ${file} + ${basePath} → ${values.out}`);
  return 0;
}
