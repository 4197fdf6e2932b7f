// The built-in optimizers: one file of pure DSL each.
export { sgd } from './sgd.js';
export { adam } from './adam.js';
export { adamw } from './adamw.js';
export { kfac } from './kfac.js';
export { partition } from './partition.js';
export { sophia } from './sophia.js';
export {
  chain,
  clipByGlobalNorm,
  addWeightDecay,
  defineTransform,
  type Transform,
  type ChainPart,
} from './chain.js';
export { ring } from './ring.js';
export { reng } from './reng.js';
export { rkalman } from './rkalman.js';
export {
  scheduled,
  lrMultiplier,
  SCHEDULES,
  type ScheduleName,
  type ScheduleSettings,
} from './schedule.js';
