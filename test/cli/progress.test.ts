// The progress display: durations, ETA arithmetic, the bar's text, plain lines at the period on a
// pipe, carriage-return rewrites on a TTY, and a rate that ignores the compiling first step.
import { describe, expect, test } from 'vitest';
import { createProgress, etaSeconds, formatDuration, progressLine } from '../../cli/progress.js';
import type { StepRecord } from '../../runtime/trainer.js';

const record = (step: number, elapsed: number, perEpoch = 10): StepRecord => ({
  epoch: 1 + Math.floor((step - 1) / perEpoch),
  step,
  position: ((step - 1) % perEpoch) + 1,
  metrics: { loss: 0.5, accuracy: 0.75, skipped: 0 },
  elapsed,
});

describe('progress', () => {
  test('durations', () => {
    expect([0, 9.6, 75, 3725, Number.NaN, -1].map(formatDuration)).toEqual([
      '0:00',
      '0:10',
      '1:15',
      '1:02:05',
      '--:--',
      '--:--',
    ]);
  });

  test('ETA counts the rest of this epoch and the later ones', () => {
    // 2 epochs of 100 steps, at step 40 of epoch 1: 160 steps left at 8 steps/s = 20 s.
    expect(
      etaSeconds({
        epoch: 1,
        epochs: 2,
        position: 40,
        stepsPerEpoch: 100,
        loss: 1,
        stepsPerSecond: 8,
      }),
    ).toBe(20);
    expect(
      etaSeconds({
        epoch: 2,
        epochs: 2,
        position: 100,
        stepsPerEpoch: 100,
        loss: 1,
        stepsPerSecond: 8,
      }),
    ).toBe(0);
    expect(
      etaSeconds({
        epoch: 1,
        epochs: 2,
        position: 1,
        stepsPerEpoch: 100,
        loss: 1,
        stepsPerSecond: Number.NaN,
      }),
    ).toBeNaN();
  });

  test('the bar', () => {
    const line = progressLine(
      {
        epoch: 1,
        epochs: 2,
        position: 50,
        stepsPerEpoch: 200,
        loss: 0.45123,
        accuracy: 0.844,
        stepsPerSecond: 12.34,
      },
      8,
    );
    expect(line).toBe(
      'epoch 1/2 [##······] 25% 50/200  loss 0.4512  acc 84.4 %  12.3 steps/s  ETA 0:28',
    );
    expect(
      progressLine(
        { epoch: 1, epochs: 1, position: 3, stepsPerEpoch: 4, loss: 1, stepsPerSecond: Number.NaN },
        0,
      ),
    ).toBe('epoch 1/1 75% 3/4  loss 1.0000  -- steps/s  ETA --:--');
  });

  test('plain lines every period and at the epoch end; a TTY rewrites one line', () => {
    const printed: string[] = [];
    const plain = createProgress({
      epochs: 1,
      stepsPerEpoch: 10,
      isTty: false,
      print: (l) => printed.push(l),
      every: 4,
      prefix: 'ring',
    });
    for (let s = 1; s <= 10; s++) plain.step(record(s, 5 + 0.5 * (s - 1)));
    expect(printed.map((l) => l.split('  loss')[0])).toEqual([
      'ring  epoch 1/1 40% 4/10',
      'ring  epoch 1/1 80% 8/10',
      'ring  epoch 1/1 100% 10/10',
    ]);
    // Steps after the first arrive every 0.5 s: 2 steps/s, whatever the first step's 5 s of
    // compiling.
    expect(printed[0]).toMatch(/2\.0 steps\/s {2}ETA 0:03$/);

    const written: string[] = [];
    const tty = createProgress({
      epochs: 1,
      stepsPerEpoch: 10,
      isTty: true,
      print: () => {
        throw new Error('no lines on a TTY');
      },
      write: (t) => written.push(t),
    });
    tty.step(record(1, 1));
    tty.step(record(2, 2));
    tty.end();
    tty.end();
    expect(written.length).toBe(3);
    expect(written[0].startsWith('\r')).toBe(true);
    expect(written[2]).toBe('\n');
  });
});
