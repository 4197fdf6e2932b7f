// The models `grng compile --preset` compiles training steps of: an MLP by its layer sizes, a ViT
// or a small CNN by named options. Each gives the model, its parameter layout and the width of
// the flat input rows it trains on.
import { GrngError } from '../core/errors.js';
import { HostArray } from '../core/host-array.js';
import type { DType } from '../core/ir/index.js';
import { flattenTree } from '../core/tree.js';
import { nn } from '../dsl/nn/index.js';
import type { Model } from '../dsl/nn/layers.js';
import type { LeafSpec } from './manifest.js';

export const PRESET_USAGE =
  'mlp:SIZES (e.g. mlp:784,256,10), ' +
  'vit:image=28x28x1,patch=7,dim=64,depth=2,heads=4,classes=10 (mlpDim optional) or ' +
  'cnn:image=28x28x1,channels=16/32,kernel=3,classes=10 (hidden optional)';

const fail = (name: string, why: string): never => {
  throw new GrngError('compile', `--preset ${name}: ${why}; use ${PRESET_USAGE}`);
};

/** `k=v,k=v` options with integer values, a×b×c images and a/b lists. */
function options(name: string, text: string, allowed: readonly string[]) {
  const given = new Map<string, string>();
  for (const pair of text === '' ? [] : text.split(',')) {
    const [key, value, ...rest] = pair.split('=');
    if (value === undefined || rest.length > 0 || !allowed.includes(key))
      fail(name, `'${pair}' is not one of ${allowed.map((k) => `${k}=…`).join(', ')}`);
    given.set(key, value);
  }
  const ints = (key: string, separator: string): number[] | undefined => {
    const text = given.get(key);
    if (text === undefined) return undefined;
    const values = text.split(separator).map(Number);
    if (!values.every((n) => Number.isInteger(n) && n >= 1))
      fail(name, `${key} must be positive integers, got '${text}'`);
    return values;
  };
  const int = (key: string, fallback?: number): number => {
    const value = ints(key, ',')?.[0] ?? fallback;
    return value ?? fail(name, `${key}= is required`);
  };
  const image = ints('image', 'x') ?? [28, 28, 1];
  if (image.length !== 3) fail(name, `image must be HxWxC, got '${given.get('image')}'`);
  return { int, ints, image: image as [number, number, number] };
}

/** A model preset: the model, its parameter layout and its input width (flat rows). */
export function preset(name: string): { model: Model<never>; shapes: unknown; features: number } {
  const [kind, spec = ''] = name.split(/:(.*)/s);
  let model: Model<never>;
  let features: number;
  if (kind === 'mlp') {
    const sizes = spec.split(',').map(Number);
    if (sizes.length < 2 || !sizes.every((n) => Number.isInteger(n) && n >= 1))
      fail(name, 'sizes must be at least two positive integers');
    model = nn.mlp(sizes);
    features = sizes[0];
  } else if (kind === 'vit') {
    const o = options(name, spec, ['image', 'patch', 'dim', 'depth', 'heads', 'classes', 'mlpDim']);
    const dim = o.int('dim', 64);
    model = nn.vit({
      image: o.image,
      patch: o.int('patch', 7),
      dim,
      depth: o.int('depth', 2),
      heads: o.int('heads', 4),
      classes: o.int('classes'),
      mlpDim: o.int('mlpDim', 4 * dim),
    });
    features = o.image[0] * o.image[1] * o.image[2];
  } else if (kind === 'cnn') {
    const o = options(name, spec, ['image', 'channels', 'kernel', 'hidden', 'classes']);
    model = nn.cnn({
      image: o.image,
      channels: o.ints('channels', '/') ?? [16, 32],
      kernel: o.int('kernel', 3),
      hidden: o.ints('hidden', ',')?.[0],
      classes: o.int('classes'),
    });
    features = o.image[0] * o.image[1] * o.image[2];
  } else {
    return fail(name, `unknown model '${kind}'`);
  }
  const { leaves, rebuild } = flattenTree(
    'compile',
    model.init(0),
    (x): x is HostArray => x instanceof HostArray,
    'an array',
  );
  return {
    model,
    shapes: rebuild(leaves.map((a): LeafSpec => ({ shape: a.shape, dtype: a.dtype as DType }))),
    features,
  };
}
