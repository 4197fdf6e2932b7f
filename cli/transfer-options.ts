// Transfer learning in `grng train`: `--init FILE` starts from the parameters of an earlier run's
// checkpoint, and `--lora SPEC` fine-tunes low-rank adapters on them (nn.lora) instead of every
// weight. Parsing and checks only; the training itself is the Trainer's.
import { GrngError } from '../core/errors.js';
import { isHostArray, type HostArray } from '../core/host-array.js';
import { leafPaths } from '../core/tree-paths.js';
import { flattenTree, type Tree } from '../core/tree.js';
import { nn } from '../dsl/nn/index.js';
import type { Model } from '../dsl/nn/layers.js';
import type { LoraOptions } from '../dsl/nn/lora-model.js';
import type { Tensor } from '../dsl/tensor.js';
import type { buildModel } from './models.js';
import { loadCheckpoint } from '../runtime/checkpoint.js';

export const TRANSFER_USAGE = `  --init FILE        start from the parameters of a checkpoint (a grng train run of the same
                     model; grng merge turns a LoRA run into one)
  --lora SPEC        fine-tune low-rank adapters only, e.g. rank=8,alpha=16,targets=q,v: rank r,
                     scale alpha/r (alpha defaults to r), the dense layers to adapt by path or
                     its last segments (default q,v: every attention block's query and value;
                     for an MLP name layers, e.g. targets=layers.0,layers.1) and the base
                     parameters trained too (train=head by default, the classifier; train=none)`;

export const TRANSFER_OPTIONS = {
  init: { type: 'string' },
  lora: { type: 'string' },
} as const;

/**
 * `--lora`'s value as nn.lora options. Items are KEY=VALUE separated by commas; an item without
 * '=' continues the list of the key before it (targets=q,v). `head` is the model's classifier
 * path, trained by default.
 */
export function parseLoraSpec(text: string, head: string): LoraOptions {
  const fields = new Map<string, string[]>();
  let key: string | undefined;
  for (const item of text.split(',').map((s) => s.trim())) {
    const at = item.indexOf('=');
    if (at < 0) {
      if (key === 'rank' || key === 'alpha')
        throw new GrngError('cli', `--lora: '${item}' has no value (KEY=VALUE), in '${text}'`);
      if (key === undefined || item === '')
        throw new GrngError(
          'cli',
          `--lora takes KEY=VALUE items (rank=8,alpha=16,targets=q,v), got '${text}'`,
        );
      fields.get(key)?.push(item);
      continue;
    }
    key = item.slice(0, at);
    if (!['rank', 'alpha', 'targets', 'train'].includes(key))
      throw new GrngError('cli', `--lora: unknown key '${key}'; use rank, alpha, targets, train`);
    if (fields.has(key)) throw new GrngError('cli', `--lora: ${key} is given twice`);
    fields.set(key, [item.slice(at + 1)]);
  }
  const one = (k: string): number | undefined => {
    const v = fields.get(k);
    if (v === undefined) return undefined;
    const n = Number(v[0]);
    if (v.length !== 1 || v[0] === '' || !Number.isFinite(n))
      throw new GrngError('cli', `--lora: ${k} must be a number, got '${v.join(',')}'`);
    return n;
  };
  const rank = one('rank');
  if (rank === undefined || !Number.isInteger(rank) || rank < 1)
    throw new GrngError('cli', `--lora needs rank=N with N a positive integer, got '${text}'`);
  const train = fields.get('train') ?? [head];
  return {
    rank,
    alpha: one('alpha'),
    targets: fields.get('targets'),
    train: train.length === 1 && train[0] === 'none' ? [] : train,
  };
}

/**
 * The parameters of checkpoint `file`, checked against `expected` (the model's own init): the same
 * paths with the same shapes, or a GrngError naming the first difference.
 */
export function loadInitialParams(file: string, expected: Tree<HostArray>): Tree<HostArray> {
  const saved = loadCheckpoint(file);
  const params = saved.trees.params;
  if (params === undefined) throw new GrngError('cli', `--init: ${file} holds no parameters`);
  if (saved.meta.lora !== undefined)
    throw new GrngError(
      'cli',
      `--init: ${file} holds LoRA adapters, not a whole model; merge them into their base first ` +
        `(grng merge ${file} --out merged.safetensors)`,
    );
  const shapes = (tree: unknown) => {
    const paths = leafPaths('cli', tree, isHostArray, 'an array');
    const { leaves } = flattenTree('cli', tree, isHostArray, 'an array');
    return new Map(paths.map((p, i) => [p, leaves[i].shape.join('×')]));
  };
  const want = shapes(expected);
  const got = shapes(params);
  for (const [path, shape] of want) {
    if (!got.has(path))
      throw new GrngError('cli', `--init: ${file} has no parameter ${path}; is it this model's?`);
    if (got.get(path) !== shape)
      throw new GrngError(
        'cli',
        `--init: ${file} has ${path} of shape ${got.get(path)}, this model ${shape} ` +
          `(a different --hidden, --dim, … or number of classes?)`,
      );
  }
  const extra = [...got.keys()].find((p) => !want.has(p));
  if (extra !== undefined)
    throw new GrngError('cli', `--init: ${file} has ${extra}, which this model does not`);
  return params;
}

/**
 * The model and starting parameters after --init and --lora, its description, and what the
 * checkpoints record of them (grng merge reads it).
 */
export function transferred(
  built: ReturnType<typeof buildModel>,
  values: { readonly init?: string; readonly lora?: string },
  seed: number,
): {
  model: Model<never>;
  description: string;
  params: Tree<HostArray> | undefined;
  transfer: Record<string, unknown>;
} {
  const base = built.model as unknown as Model<Tree<Tensor>>;
  const start =
    values.init === undefined ? undefined : loadInitialParams(values.init, base.init(seed));
  const from = values.init === undefined ? '' : ` from ${values.init}`;
  const init = values.init === undefined ? {} : { init: values.init };
  if (values.lora === undefined)
    return {
      model: built.model,
      description: built.description + from,
      params: start,
      transfer: init,
    };
  const options = parseLoraSpec(values.lora, built.head);
  const adapted = nn.lora(base, options);
  const params = adapted.init(seed, start);
  const targets = adapted.targetsOf((params as { base: Tree<HostArray> }).base);
  const alpha = options.alpha ?? options.rank;
  const trained = options.train?.length ? ` + ${options.train.join(', ')}` : '';
  return {
    model: adapted as unknown as Model<never>,
    description:
      `${built.description}${from}, LoRA rank ${options.rank} α ${alpha} on ` +
      `${targets.length} layers${trained}`,
    params,
    transfer: {
      ...init,
      lora: { rank: options.rank, alpha, targets: options.targets, train: options.train },
    },
  };
}
