// Learning-rate schedules (docs/algorithms.md §6.0): an optimizer whose lr is multiplied on step t
// by a warm-up and a decay, like optax's warmup_cosine_decay_schedule passed as its learning rate.
// The multiplier is part of the compiled step (t is the step counter the optimizer already keeps),
// so a resumed run continues the schedule exactly and AOT builds carry it.
import {
  add,
  cos,
  div,
  gt,
  maximum,
  minimum,
  mul,
  sub,
  where,
  GrngError,
  type Tensor,
} from '../dsl/index.js';
import {
  contextWith,
  defineOptimizer,
  outside,
  type HyperDefaults,
  type HyperSettings,
  type HyperTensors,
  type Optimizer,
} from '../dsl/optimizer.js';

export const SCHEDULES = ['constant', 'linear', 'cosine'] as const;
export type ScheduleName = (typeof SCHEDULES)[number];

export const SCHEDULE_HYPER = {
  /** 'constant', 'linear' or 'cosine': the decay after the warm-up. */
  schedule: 'cosine' as string,
  /** Steps of linear warm-up from lr/warmupSteps to lr (0: none). */
  warmupSteps: 0,
  /** The step at which the decay reaches finalScale·lr (warm-up included, as in optax). */
  decaySteps: 1000,
  /** The multiplier the decay ends at (and keeps after decaySteps). */
  finalScale: 0,
};

export type ScheduleSettings = HyperSettings<typeof SCHEDULE_HYPER>;

/**
 * The lr multiplier on step t (t = 1, 2, …): min(1, t/w) during a warm-up of w steps, then with
 * p = clamp((t − w)/(T − w), 0, 1) for decaySteps T and final scale f:
 * constant 1, linear f + (1 − f)(1 − p), cosine f + (1 − f)·½(1 + cos πp).
 */
export function lrMultiplier(
  t: Tensor,
  hyper: HyperTensors<Omit<typeof SCHEDULE_HYPER, 'schedule'>>,
  schedule: string,
): Tensor {
  // An unknown name would otherwise fall through to the constant schedule, silently.
  if (!(SCHEDULES as readonly string[]).includes(schedule))
    throw new GrngError(
      'lrMultiplier',
      `schedule must be ${SCHEDULES.join(', ')}, got ${JSON.stringify(schedule)}`,
    );
  const w = hyper.warmupSteps;
  const warm = where(gt(w, 0), minimum(1, div(t, maximum(w, 1))), 1);
  const span = maximum(sub(hyper.decaySteps, w), 1);
  const p = minimum(1, maximum(0, div(sub(t, w), span)));
  const f = hyper.finalScale;
  const shape =
    schedule === 'linear'
      ? sub(1, p)
      : schedule === 'cosine'
        ? mul(0.5, add(1, cos(mul(Math.PI, p))))
        : undefined;
  return shape === undefined ? warm : mul(warm, add(f, mul(sub(1, f), shape)));
}

function validateSchedule(h: ScheduleSettings): string | undefined {
  if (!(SCHEDULES as readonly string[]).includes(h.schedule))
    return `schedule must be ${SCHEDULES.join(', ')}, got '${h.schedule}'`;
  if (!Number.isInteger(h.warmupSteps) || h.warmupSteps < 0)
    return `warmupSteps must be a non-negative integer, got ${h.warmupSteps}`;
  if (!Number.isInteger(h.decaySteps) || h.decaySteps < 1)
    return `decaySteps must be a positive integer, got ${h.decaySteps}`;
  if (h.schedule !== 'constant' && h.decaySteps <= h.warmupSteps)
    return `decaySteps (${h.decaySteps}) must exceed warmupSteps (${h.warmupSteps})`;
  return outside('finalScale', h.finalScale, 0, 1, true);
}

/**
 * `optimizer` with its lr scaled on each step by a schedule (warm-up, then constant, linear or
 * cosine decay to finalScale·lr at decaySteps). Its hyperparameters are the optimizer's plus
 * schedule, warmupSteps, decaySteps and finalScale, all runtime values but the schedule's name. The
 * name is `cosine(adamw)` (the schedule's name around the optimizer's), so a checkpoint resumes
 * only with the same kind of schedule.
 */
export function scheduled<H extends HyperDefaults, S>(
  optimizer: Optimizer<H, S>,
  settings: Partial<ScheduleSettings> = {},
): Optimizer<HyperDefaults, S> {
  const op = 'scheduled';
  const inner = optimizer.hyper as HyperSettings<HyperDefaults>;
  if (typeof inner.lr !== 'number')
    throw new GrngError(op, `${optimizer.name} has no numeric 'lr' hyperparameter to schedule`);
  const clash = Object.keys(SCHEDULE_HYPER).find((k) => k in inner);
  if (clash !== undefined)
    throw new GrngError(op, `${optimizer.name} already has a hyperparameter named '${clash}'`);
  const schedule = { ...SCHEDULE_HYPER, ...settings };
  const problem = validateSchedule(schedule);
  if (problem !== undefined) throw new GrngError(op, problem);
  const own = <T>(hyper: Readonly<Record<string, T>>) =>
    Object.fromEntries(Object.keys(inner).map((k) => [k, hyper[k]]));
  const definition = optimizer.definition;
  return defineOptimizer<HyperDefaults, S>({
    name: `${schedule.schedule}(${optimizer.name})`,
    hyper: { ...inner, ...schedule },
    static: definition.static as readonly string[] | undefined,
    validate: (h) =>
      (h.schedule !== schedule.schedule
        ? `the schedule is part of the optimizer's name (${schedule.schedule}); ` +
          `build another with scheduled() to change it`
        : undefined) ??
      validateSchedule(h as ScheduleSettings) ??
      definition.validate?.(own(h) as never),
    init: (params, h, layers) => definition.init(params, own(h) as never, layers),
    report: definition.report,
    update: (ctx) => {
      const hyper = ctx.hyper as Record<string, unknown>;
      const scale = lrMultiplier(
        ctx.t,
        hyper as HyperTensors<Omit<typeof SCHEDULE_HYPER, 'schedule'>>,
        schedule.schedule,
      );
      const inside = contextWith(ctx, {
        hyper: { value: { ...own(hyper), lr: mul(hyper.lr as Tensor, scale) } },
        settings: { value: own(ctx.settings as Record<string, unknown>) },
      });
      return definition.update(inside as never);
    },
  })({ ...inner, ...schedule } as HyperSettings<HyperDefaults>);
}
