// `npm run mutation:checker`: the mutation run of stryker.config.mjs restricted to the optimizers
// that read the model (Sophia, K-FAC, RING, RENG, R-Kalman and their shared Kronecker code) and
// to the suites that check them through checkTrainingOptimizer (vitest.checker-mutation.config.ts):
// a mutant killed here is caught by the public checker alone. Reports go to
// reports/mutation-checker/.
import base from './stryker.config.mjs';

export { strykerPlugins } from './stryker.config.mjs';

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  ...base,
  vitest: { configFile: 'vitest.checker-mutation.config.ts' },
  mutate: [
    'optimizers/sophia.ts',
    'optimizers/kfac.ts',
    'optimizers/kronecker.ts',
    'optimizers/ring.ts',
    'optimizers/reng.ts',
    'optimizers/rkalman.ts',
  ],
  plugins: ['@stryker-mutator/*', './stryker.config.mjs'],
  incrementalFile: 'reports/mutation-checker/stryker-incremental.json',
  htmlReporter: { fileName: 'reports/mutation-checker/index.html' },
  jsonReporter: { fileName: 'reports/mutation-checker/mutation.json' },
};
