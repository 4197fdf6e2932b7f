import { defineConfig } from 'vitest/config';

// `npm run bench` (scripts/bench.mjs): the benchmark program runs as a vitest file (vitest runs
// TypeScript directly) and print their tables; they assert nothing about speed.
export default defineConfig({
  test: {
    include: ['bench/bench.bench.ts'],
    testTimeout: 600_000,
    fileParallelism: false,
  },
});
