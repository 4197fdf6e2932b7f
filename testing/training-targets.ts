// What the random problems of checkTrainingOptimizer train on: class labels with the mean
// cross-entropy, or real targets with the mean squared error.
import fc from 'fast-check';

/**
 * 'classification': logits and integer labels [batch], trained with crossEntropy. 'regression':
 * real outputs and targets [batch × outputs], trained with meanSquaredError.
 */
export type TrainingTask = 'classification' | 'regression';

/** A batch's labels: Int32Array class indices, or Float64Array targets (row-major). */
export type BatchLabels = Int32Array | Float64Array;

/** The fewest outputs a model of the task has: one regression output, two classes. */
export const minOutputs = (task: TrainingTask): number => (task === 'regression' ? 1 : 2);

/** One batch's labels, with `values` drawing the regression targets. */
export function batchLabels(
  task: TrainingTask,
  batch: number,
  outputs: number,
  values: (n: number) => fc.Arbitrary<Float64Array>,
): fc.Arbitrary<BatchLabels> {
  if (task === 'regression') return values(batch * outputs);
  return fc
    .array(fc.integer({ min: 0, max: outputs - 1 }), { minLength: batch, maxLength: batch })
    .map((ys) => Int32Array.from(ys));
}
