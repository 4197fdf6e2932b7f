// One fixed seed for every property test, so a run is reproducible; fast-check prints the
// seed and the shrunk counterexample on failure. Override with GRNG_SEED=<int> to explore.
import fc from 'fast-check';

export const SEED = Number(process.env.GRNG_SEED ?? 20261128);
fc.configureGlobal({ seed: SEED, numRuns: 50, endOnFailure: false });
console.log(`fast-check seed ${SEED} (set GRNG_SEED to change)`);
