// Progress for training commands: a self-rewriting bar on a TTY (epoch, position, loss, accuracy,
// steps/s, ETA), and on a pipe or log file a plain line every `every` steps. Rates come from the
// Trainer's training clock over a window of recent steps, so compile time and evaluations do not
// distort the ETA.
import type { StepRecord } from '../runtime/trainer.js';

/** 75 s → "1:15"; 3725 s → "1:02:05"; unknown → "--:--". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const [h, m, r] = [Math.floor(s / 3600), Math.floor((s % 3600) / 60), s % 60];
  const two = (n: number) => String(n).padStart(2, '0');
  return h > 0 ? `${h}:${two(m)}:${two(r)}` : `${m}:${two(r)}`;
}

export interface ProgressState {
  readonly epoch: number;
  readonly epochs: number;
  readonly position: number;
  readonly stepsPerEpoch: number;
  readonly loss: number;
  readonly accuracy?: number;
  /** NaN until measured. */
  readonly stepsPerSecond: number;
}

/** Seconds left at `stepsPerSecond` for the rest of this epoch and the epochs after it. */
export function etaSeconds(p: ProgressState): number {
  const left = (p.epochs - p.epoch) * p.stepsPerEpoch + (p.stepsPerEpoch - p.position);
  return p.stepsPerSecond > 0 ? left / p.stepsPerSecond : Number.NaN;
}

/** "epoch 1/2 [#####·······] 42% 197/468  loss 0.4512  acc 84.4 %  12.3 steps/s  ETA 0:21". */
export function progressLine(p: ProgressState, barWidth = 20): string {
  const done = Math.min(1, p.position / p.stepsPerEpoch);
  const filled = Math.round(done * barWidth);
  const bar = barWidth > 0 ? ` [${'#'.repeat(filled)}${'·'.repeat(barWidth - filled)}]` : '';
  const accuracy = p.accuracy === undefined ? '' : `  acc ${(100 * p.accuracy).toFixed(1)} %`;
  const rate = Number.isFinite(p.stepsPerSecond)
    ? `${p.stepsPerSecond.toFixed(1)} steps/s`
    : '-- steps/s';
  return (
    `epoch ${p.epoch}/${p.epochs}${bar} ${Math.floor(100 * done)}% ` +
    `${p.position}/${p.stepsPerEpoch}  loss ` +
    `${p.loss.toFixed(4)}${accuracy}  ${rate}  ETA ` +
    `${formatDuration(etaSeconds(p))}`
  );
}

export interface ProgressOptions {
  readonly epochs: number;
  readonly stepsPerEpoch: number;
  readonly isTty: boolean;
  /** Writes a whole line (a newline is added by the printer). */
  readonly print: (line: string) => void;
  /** Writes raw text to the terminal (the TTY bar's carriage returns). */
  readonly write?: (text: string) => void;
  /** Plain-line period in steps (default: a tenth of an epoch). */
  readonly every?: number;
  /** Put before every line, e.g. the optimizer's name in a comparison. */
  readonly prefix?: string;
}

/** A step sink for Trainer.onStep, and `end()` to finish the TTY line before other output. */
export function createProgress(options: ProgressOptions): {
  step(record: StepRecord): void;
  end(): void;
} {
  const window: { step: number; elapsed: number }[] = [];
  const every = options.every ?? Math.max(1, Math.round(options.stepsPerEpoch / 10));
  const write = options.write ?? ((text: string) => process.stdout.write(text));
  const prefix = options.prefix === undefined ? '' : `${options.prefix}  `;
  let open = false;
  return {
    step({ epoch, step, position, metrics, elapsed }) {
      // The first step of a process carries compilation: start the window after it.
      window.push({ step, elapsed });
      if (window.length > 50) window.shift();
      const [first, last] = [window[0], window[window.length - 1]];
      const rate =
        window.length > 1 ? (last.step - first.step) / (last.elapsed - first.elapsed) : Number.NaN;
      const state = {
        epoch,
        epochs: options.epochs,
        position,
        stepsPerEpoch: options.stepsPerEpoch,
        loss: metrics.loss,
        accuracy: metrics.accuracy,
        stepsPerSecond: rate,
      };
      if (options.isTty) {
        write(`\r${prefix}${progressLine(state)}\u001b[K`);
        open = true;
      } else if (position % every === 0 || position === options.stepsPerEpoch)
        options.print(`${prefix}${progressLine(state, 0)}`);
    },
    end() {
      if (open) write('\n');
      open = false;
    },
  };
}
