#!/usr/bin/env node
// `npm run demo` will train an MLP on Fashion-MNIST with RING/RENG and the baselines on
// WebGPU. Until the runtime and trainer exist it says so plainly rather than fake a run.
console.log(`grng demo: not yet available.

The Fashion-MNIST training demo needs the compiled training step (issue 4) and the
Trainer (issue 7); once they land, \`npm run demo\` will train and compare the
optimizers here. Meanwhile \`npm test\` exercises what exists today.`);
