// A setup file of the mutation-testing run only (vitest.mutation.config.ts, `npm run mutation`).
// StrykerJS's vitest runner runs the suites in worker threads (pool 'threads'), where Dawn offers
// no WebGPU adapter ("createDevice: no WebGPU adapter could be opened"), so the compiled-WebGPU
// comparisons — every test whose name or suite name says WebGPU — are skipped there. `npm test`
// (vitest.config.ts) runs them as usual.
import { beforeEach } from 'vitest';

beforeEach((context) => {
  if (context.task.fullName.includes('WebGPU')) context.skip('WebGPU: not under StrykerJS');
});
