// The vitest configuration StrykerJS runs (stryker.config.mjs, `npm run mutation`): only the
// property suites of optimizers/, which check the optimizers' math against the independent
// float64 references on the CPU interpreter. test/curvature/ is left out: it tests the curvature
// primitives of dsl/curvature/ (not mutated) and never calls an optimizer, so it could only
// lengthen the dry run. The compiled-WebGPU comparisons are skipped (./test/optimizers/
// mutation-setup.ts says why). Not part of `npm test` (vitest.config.ts runs every suite).
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/optimizers/*.test.ts'],
    setupFiles: ['test/support/fast-check-setup.ts', 'test/optimizers/mutation-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
