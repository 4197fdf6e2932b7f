// The pieces of a fine-tuning comparison: --classes (pretrain on some classes, fine-tune on
// others, relabelled), and grng compare from a pretrained checkpoint with LoRA and a learning rate
// chosen per optimizer on the validation split (--lr-sweep).
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { compare } from '../../cli/compare.js';
import type { ComparedRun } from '../../cli/compare-report.js';
import { train } from '../../cli/train.js';
import { parseClasses } from '../../cli/training-options.js';
import { selectClasses } from '../../runtime/data/select-classes.js';
import { loadIdxImages } from '../../runtime/data/image-dataset.js';
import { limitTraining } from '../../runtime/data/validation.js';
import { writeDataset } from '../support/idx-dataset.js';

describe('--classes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'grng-classes-'));
  writeDataset(dir);

  test('keeps the named classes of every split, relabelled in the order given', () => {
    const data = loadIdxImages(dir);
    const picked = selectClasses(data, [2, 0]);
    expect(picked.classes).toBe(2);
    for (const [split, from] of [
      [picked.train, data.train],
      [picked.test, data.test],
    ] as const) {
      const want = Array.from(from.y.keys()).filter((n) => from.y[n] === 2 || from.y[n] === 0);
      expect(split.count).toBe(want.length);
      want.forEach((n, k) => {
        expect(split.y[k]).toBe(from.y[n] === 2 ? 0 : 1);
        expect(Array.from(split.x.subarray(k * 16, (k + 1) * 16))).toEqual(
          Array.from(from.x.subarray(n * 16, (n + 1) * 16)),
        );
      });
    }
    expect(() => selectClasses(data, [3])).toThrow(
      /class 3 is not one of the dataset's classes 0\.\.2/,
    );
    expect(() => selectClasses(data, [1, 1])).toThrow(/must not repeat/);
  });

  test('--limit keeps a seeded choice of training images, in file order', () => {
    const data = loadIdxImages(dir);
    const rows = (x: Float32Array) =>
      Array.from({ length: x.length / 16 }, (_, n) => x.subarray(n * 16, (n + 1) * 16).join());
    const all = rows(data.train.x);
    const ten = limitTraining(data, 10, 3);
    expect(ten.train.count).toBe(10);
    const kept = rows(ten.train.x).map((r) => all.indexOf(r));
    expect(kept.every((k, i) => k >= 0 && (i === 0 || k > kept[i - 1]))).toBe(true);
    expect(rows(limitTraining(data, 10, 3).train.x)).toEqual(rows(ten.train.x));
    expect(rows(limitTraining(data, 10, 4).train.x)).not.toEqual(rows(ten.train.x));
    expect(limitTraining(data, 1000, 3)).toBe(data);
    expect(ten.test).toBe(data.test);
  });

  test('parses lists and ranges', () => {
    expect(parseClasses('0-4')).toEqual([0, 1, 2, 3, 4]);
    expect(parseClasses('5,7-8, 2')).toEqual([5, 7, 8, 2]);
    expect(() => parseClasses('a')).toThrow(/--classes takes class numbers and ranges/);
    expect(() => parseClasses('4-2')).toThrow(/runs backwards/);
  });
});

describe('grng compare --init --lora --lr-sweep', () => {
  const dir = mkdtempSync(join(tmpdir(), 'grng-transfer-compare-'));
  writeDataset(dir);
  const data = ['--dataset', 'idx', '--data', dir, '--hidden', '8', '--device', 'cpu'];
  const quiet = () => undefined;

  test('fine-tunes from a checkpoint on other classes, the lr of each chosen on validation', async () => {
    const pre = join(dir, 'pre');
    const args = [...data, '--classes', '0,1', '--batch-size', '8', '--epochs', '1', '--out', pre];
    expect(await train([...args, '--optimizer', 'adamw', '--lr', '0.05'], quiet)).toBe(0);
    const out = join(dir, 'tune');
    const lines: string[] = [];
    const tune = [
      ...data,
      '--classes',
      '2,1',
      '--validation',
      '6',
      '--init',
      join(pre, 'checkpoint.safetensors'),
      '--lora',
      'rank=1,targets=layers.0',
      '--optimizers',
      'adamw,ring',
      '--lr-sweep',
      '0.5,2',
      '--epochs',
      '1',
      '--evals-per-epoch',
      '1',
      '--batch-size',
      '6',
      '--out',
      out,
    ];
    expect(await compare(tune, (l) => lines.push(l))).toBe(0);
    expect(lines[0]).toMatch(/classes 2,1 .*LoRA rank 1/);
    const { runs } = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as {
      runs: ComparedRun[];
    };
    expect(runs.map((r) => r.name)).toEqual(['adamw', 'ring']);
    for (const run of runs) {
      const sweep = run.lrSweep ?? [];
      expect(sweep.length).toBe(2);
      const best = Math.max(...sweep.map((c) => c.validationAccuracy));
      const chosen = sweep.find((c) => c.value === run.settings.lr);
      expect(chosen?.validationAccuracy).toBe(best);
      expect(run.points.at(-1)?.validationAccuracy).toBe(best);
      expect(sweep[1].value / sweep[0].value).toBeCloseTo(4, 12);
    }
    expect(readFileSync(join(out, 'compare.md'), 'utf8')).toMatch(
      /lr chosen on validation from .*: .* %/,
    );
    await expect(
      compare(
        tune.map((v, i) => (tune[i - 1] === '--validation' ? '0' : v)),
        quiet,
      ),
    ).rejects.toThrow(/--lr-sweep chooses on the validation split: give --validation N/);
  });
});
