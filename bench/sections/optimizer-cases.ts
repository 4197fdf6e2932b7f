// The optimizer cases of the optimizers section (optimizers.ts), and of bench/cold-start.ts, which
// runs one in a child process as a new machine would.
import {
  adam,
  adamw,
  compileTrainStep,
  kfac,
  reng,
  ring,
  rkalman,
  sgd,
  sophia,
  type TrainStep,
} from '../../index.js';
import { MLP } from './mlp-step.js';

export type Common = Omit<Parameters<typeof compileTrainStep>[0], 'optimizer'>;

export interface Case {
  readonly name: string;
  /** A new compiled step of this optimizer (each call compiles again). */
  compile(common: Common): Promise<TrainStep>;
  /** The longest refresh period (steps): one period is timed whole. */
  readonly period: number;
  /** Timed periods (enough steps for a median). */
  readonly periods: number;
  readonly batch: number;
  /**
   * Also measured as a new machine pays it (bench/cold-start.ts in a child process, the driver's
   * shader cache disabled).
   */
  readonly cold?: boolean;
}

export const CASES: readonly Case[] = [
  // A second AdamW: its ratio to the interleaved baseline shows what the machine's noise does to a
  // ratio.
  {
    name: 'adamw',
    compile: (c) => compileTrainStep({ ...c, optimizer: adamw({ lr: 1e-3 }) }),
    period: 1,
    periods: 9,
    batch: MLP.batch,
    cold: true,
  },
  {
    name: 'sgd (momentum 0.9)',
    compile: (c) => compileTrainStep({ ...c, optimizer: sgd({ lr: 0.05, momentum: 0.9 }) }),
    period: 1,
    periods: 9,
    batch: MLP.batch,
  },
  {
    name: 'adam',
    compile: (c) => compileTrainStep({ ...c, optimizer: adam({ lr: 1e-3 }) }),
    period: 1,
    periods: 9,
    batch: MLP.batch,
  },
  {
    name: 'sophia-h (Hutchinson, h every 10)',
    compile: (c) => compileTrainStep({ ...c, optimizer: sophia({ lr: 1e-3 }) }),
    period: 10,
    periods: 1,
    batch: MLP.batch,
    cold: true,
  },
  {
    name: 'sophia-g (Gauss-Newton-Bartlett, h every 10)',
    compile: (c) => compileTrainStep({ ...c, optimizer: sophia({ lr: 1e-3, estimator: 'gnb' }) }),
    period: 10,
    periods: 1,
    batch: MLP.batch,
  },
  {
    name: 'kfac (factors every 10, inverses every 100)',
    compile: (c) => compileTrainStep({ ...c, optimizer: kfac({ lr: 1e-2 }) }),
    period: 100,
    periods: 1,
    batch: MLP.batch,
    cold: true,
  },
  {
    name: 'ring (S = 10)',
    compile: (c) => compileTrainStep({ ...c, optimizer: ring() }),
    period: 10,
    periods: 1,
    batch: MLP.batch,
    cold: true,
  },
  {
    name: 'ring (S = 1)',
    compile: (c) => compileTrainStep({ ...c, optimizer: ring({ inverseEvery: 1 }) }),
    period: 1,
    periods: 3,
    batch: MLP.batch,
  },
  {
    name: 'reng (S = 10)',
    compile: (c) => compileTrainStep({ ...c, optimizer: reng() }),
    period: 10,
    periods: 1,
    batch: MLP.batch,
    cold: true,
  },
  {
    name: 'adamw, batch 1',
    compile: (c) => compileTrainStep({ ...c, optimizer: adamw({ lr: 1e-3 }) }),
    period: 1,
    periods: 9,
    batch: 1,
  },
  {
    name: 'rkalman (head, diagonal P), batch 1',
    compile: (c) => compileTrainStep({ ...c, optimizer: rkalman() }),
    period: 1,
    periods: 9,
    batch: 1,
  },
];
