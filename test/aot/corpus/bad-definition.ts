// Parsed by test/aot/purity.test.ts, never run. Each /*!<rule>*/ marks where a violation starts:
// definitions grng compile cannot see into are reported as impure calls.
import { defineOptimizer } from '../../../index.js';
import { makeDefinition, makeInit, update } from './helpers.js';

export const opaque = defineOptimizer(/*!impure-call*/makeDefinition());

export const unchecked = defineOptimizer({
  name: 'unchecked',
  hyper: { lr: 0.1 },
  init: /*!impure-call*/makeInit(),
  update: /*!impure-call*/update,
});
