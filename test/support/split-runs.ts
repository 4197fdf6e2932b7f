// What the tests of split and windowed buffers run on two devices and compare: a few training
// steps of an MLP, and its training step compiled ahead of time for given limits.
import {
  array,
  compileTrainStep,
  crossEntropy,
  nn,
  type Device,
  type DeviceArray,
  type Model,
  type Optimizer,
} from '../../index.js';
import { compileOptimizerPlans } from '../../aot/compile-plans.js';
import {
  manifestFromJson,
  manifestToJson,
  type OptimizerManifest,
  type PlanLimits,
} from '../../aot/manifest.js';
import { flattenTree } from '../../core/tree.js';
import { isArrayLeaf } from '../../runtime/jit.js';
import { prng, uniform } from './random.js';

/** Every array of `tree`, read back. */
export const readAll = async (tree: unknown): Promise<number[][]> =>
  Promise.all(
    flattenTree('test', tree, isArrayLeaf, 'an array').leaves.map(async (a) =>
      Array.from(await (a as DeviceArray).read()),
    ),
  );

/** Three batches of 8 inputs of `width` and labels of 4 classes. */
export const batchesOf = (seed: number, width: number) => {
  const rng = prng(seed);
  return [0, 1, 2].map((k) => ({
    x: array(uniform(rng, 8 * width), [8, width]),
    y: array(
      Int32Array.from({ length: 8 }, (_, i) => (i + k) % 4),
      [8],
      'i32',
    ),
  }));
};

/**
 * Steps of `make()` training `model` (or the MLP of `model`'s sizes, whose first is the batches'
 * width) on `device`: each step's metrics, then the parameters and state.
 */
export async function trainModel(
  device: Device,
  model: readonly number[] | Model,
  make: () => unknown,
  batches: readonly { x: unknown; y: unknown }[],
) {
  const net = isSizes(model) ? nn.mlp(model) : model;
  const step = await compileTrainStep({
    model: net,
    loss: crossEntropy,
    optimizer: make() as Optimizer,
    params: net.init(0),
    device,
    metrics: ['loss', 'accuracy'],
  });
  const metrics = [];
  for (const batch of batches) metrics.push(await step.run(batch as never));
  return {
    metrics,
    params: await readAll(await step.params()),
    state: await readAll(await step.state()),
  };
}

const isSizes = (model: readonly number[] | Model): model is readonly number[] =>
  Array.isArray(model);

/**
 * The training step of `optimizer` on the MLP `sizes` (batches of 8), compiled ahead of time for
 * `limits`, through its JSON form as `grng compile` writes it.
 */
export function compiledTrainStep(
  sizes: readonly number[],
  optimizer: unknown,
  limits: PlanLimits,
): OptimizerManifest {
  const model = nn.mlp(sizes);
  const shapes = flattenTree('test', model.init(0), isArrayLeaf, 'an array');
  const leafSpecs = shapes.rebuild(
    shapes.leaves.map((l) => ({
      shape: [...(l as { shape: readonly number[] }).shape],
      dtype: 'f32',
    })),
  );
  const train = {
    model: model as never,
    loss: crossEntropy,
    batch: { x: { shape: [8, sizes[0]], dtype: 'f32' }, y: { shape: [8], dtype: 'i32' } },
    metrics: ['loss'],
    description: `mlp:${sizes.join(',')}`,
  } as const;
  return manifestFromJson(
    manifestToJson(compileOptimizerPlans(optimizer as Optimizer, leafSpecs, { train, limits })),
  );
}
