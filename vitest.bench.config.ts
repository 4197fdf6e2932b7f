import { defineConfig } from 'vitest/config';

// `npm run bench`: the benchmark programs run as vitest files (vitest runs TypeScript directly)
// and print their tables; they assert nothing about speed.
export default defineConfig({
  test: {
    include: ['bench/**/*.bench.ts'],
    testTimeout: 600_000,
    fileParallelism: false,
  },
});
