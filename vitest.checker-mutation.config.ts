// The vitest configuration of `npm run mutation:checker` (stryker.checker.config.mjs): only the
// suites that check the curvature and regularized optimizers through grng/testing's public
// checkTrainingOptimizer, so that each surviving mutant is one that checker misses. The WebGPU
// comparisons are skipped as in vitest.mutation.config.ts (test/optimizers/mutation-setup.ts).
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/optimizers/*-model-check.test.ts'],
    setupFiles: ['test/support/fast-check-setup.ts', 'test/optimizers/mutation-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
