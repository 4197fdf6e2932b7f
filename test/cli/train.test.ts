// `grng train` through its entry function on a tiny IDX dataset the test writes: two epochs on
// the float64 interpreter, metrics as JSON Lines, a checkpoint per epoch, --resume continuing to
// a third epoch, and one-line errors for bad options.
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { train } from '../../cli/train.js';
import { defaultNormalization, modelConfig, modelRecipe } from '../../cli/models.js';
import { GrngError } from '../../index.js';
import { loadCheckpoint } from '../../runtime/checkpoint.js';
import { writeDataset } from '../support/idx-dataset.js';

describe('grng train', () => {
  const dir = mkdtempSync(join(tmpdir(), 'grng-cli-'));
  writeDataset(dir);
  const out = join(dir, 'run');
  const common = [
    '--dataset',
    'idx',
    '--data',
    dir,
    '--hidden',
    '8',
    '--batch-size',
    '12',
    '--device',
    'cpu',
    '--out',
    out,
    '--optimizer',
    'ring',
    '--lr',
    '0.05',
    '--inverse-every',
    '2',
  ];

  // The MLP's --hidden 8 removed, for the other models.
  const withoutHidden = common.filter(
    (_, i) => common[i] !== '--hidden' && common[i - 1] !== '--hidden',
  );

  test(
    'two epochs: a line per epoch, metrics.jsonl with every step and ' +
      'epoch, a checkpoint; --resume adds a third epoch',
    async () => {
      const lines: string[] = [];
      expect(
        await train([...common, '--epochs', '2', '--schedule', 'cosine'], (l) => lines.push(l)),
      ).toBe(0);
      expect(lines.filter((l) => /^epoch \d+:/.test(l)).length).toBe(2);
      const records = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { kind: string; step?: number; testAccuracy?: number });
      expect(records.filter((r) => r.kind === 'step').map((r) => r.step)).toEqual([
        1, 2, 3, 4, 5, 6, 7, 8,
      ]);
      expect(records.filter((r) => r.kind === 'epoch').length).toBe(2);
      expect(loadCheckpoint(join(out, 'checkpoint.safetensors')).meta).toMatchObject({
        step: 8,
        epoch: 3,
        position: 0,
        // --schedule cosine: the decay spans the 2 epochs' 8 steps.
        optimizer: 'cosine(ring)',
      });
      const run = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
        .split('\n')
        .map((l) => (l === '' ? {} : (JSON.parse(l) as { kind?: string; hyper?: object })))
        .find((r) => r.kind === 'run');
      expect(run?.hyper).toMatchObject({ lr: 0.05, decaySteps: 8, warmupSteps: 0, finalScale: 0 });

      // The schedule is part of the optimizer's name: resuming without it is refused.
      await expect(train([...common, '--epochs', '3', '--resume'], () => {})).rejects.toThrow(
        /cosine\(ring\)/,
      );
      const more: string[] = [];
      expect(
        await train([...common, '--epochs', '3', '--schedule', 'cosine', '--resume'], (l) =>
          more.push(l),
        ),
      ).toBe(0);
      expect(more.filter((l) => /^epoch \d+:/.test(l)).map((l) => l.split(':')[0])).toEqual([
        'epoch 3',
      ]);
      const after = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { kind: string; step?: number; testAccuracy?: number });
      expect(after.filter((r) => r.kind === 'step').map((r) => r.step)).toEqual([
        1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
      ]);
      // Resumed with --epochs 3, the schedule spans the 12 steps of the longer run.
      expect(after.find((r) => r.kind === 'run' && after.indexOf(r) > 8)).toMatchObject({
        hyper: { decaySteps: 12 },
      });
      // Three well-separated classes: RING reaches at least 90 % test accuracy in 12 steps
      // (measured: 100 %).
      expect(after.filter((r) => r.kind === 'epoch').at(-1)?.testAccuracy).toBeGreaterThanOrEqual(
        0.9,
      );
      // The plots cover the whole run: 12 steps in buckets of 1 (4 steps per epoch / 10, rounded up
      // to 1).
      const loss = readFileSync(join(out, 'loss.svg'), 'utf8');
      expect(loss).toContain('train (batch mean)');
      expect(existsSync(join(out, 'accuracy.svg'))).toBe(true);
      expect(more.at(-1)).toMatch(/plots: .*loss\.svg/);
    },
  );

  test(
    '--validation holds images out and reports their accuracy; --set ' +
      'passes any hyperparameter',
    async () => {
      const lines: string[] = [];
      const runOut = join(dir, 'validated');
      expect(
        await train(
          [
            ...common,
            '--out',
            runOut,
            '--epochs',
            '1',
            '--validation',
            '12',
            '--normalize',
            'standard',
            '--set',
            'damping=grad_norm',
          ],
          (l) => lines.push(l),
        ),
      ).toBe(0);
      expect(lines[0]).toMatch(/36 train \/ 12 validation \/ 12 test/);
      expect(lines.find((l) => l.startsWith('epoch 1:'))).toMatch(/validation accuracy/);
      const run = readFileSync(join(runOut, 'metrics.jsonl'), 'utf8')
        .split('\n')
        .map((l) =>
          l === '' ? {} : (JSON.parse(l) as { kind?: string; hyper?: { damping?: string } }),
        )
        .find((r) => r.kind === 'run');
      expect(run?.hyper?.damping).toBe('grad_norm');
      expect(readFileSync(join(runOut, 'accuracy.svg'), 'utf8')).toContain('validation');
    },
  );

  test(
    '--model vit and --model cnn train on the image shape the IDX files give; model options as ' +
      'flags or --set model.K=V, saved with the checkpoint',
    async () => {
      for (const [name, options] of [
        ['vit', ['--patch', '2', '--dim', '4', '--set', 'model.depth=1', '--heads', '2']],
        ['cnn', ['--channels', '2', '--kernel', '3', '--hidden', '5']],
      ] as const) {
        const lines: string[] = [];
        const runOut = join(dir, name);
        const args = [
          ...withoutHidden,
          '--model',
          name,
          ...options,
          '--out',
          runOut,
          '--epochs',
          '1',
        ];
        expect(await train(args, (l) => lines.push(l))).toBe(0);
        expect(lines[0]).toMatch(
          name === 'vit' ? /ViT 4×4×1 patch 2, dim 4, depth 1/ : /CNN 4×4×1/,
        );
        // The CNN standardizes its pixels unless --normalize says otherwise.
        expect(lines[0]).toMatch(
          name === 'cnn' ? /test images \(standardized\), / : /test images, /,
        );
        const loss = readFileSync(join(runOut, 'metrics.jsonl'), 'utf8')
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as { kind: string; loss?: number })
          .filter((r) => r.kind === 'step')
          .map((r) => r.loss ?? Number.NaN);
        expect(loss.every(Number.isFinite)).toBe(true);
        // --lr 0.05 (in common) wins over the ViT's RING default of 3e-3.
        const run = readFileSync(join(runOut, 'metrics.jsonl'), 'utf8')
          .trim()
          .split('\n')
          .map(
            (l) => JSON.parse(l) as { kind: string; hyper?: { lr?: number }; normalize?: string },
          )
          .find((r) => r.kind === 'run');
        expect(run?.hyper?.lr).toBe(0.05);
        expect(run?.normalize).toBe(name === 'cnn' ? 'standard' : 'unit');
        expect(loadCheckpoint(join(runOut, 'checkpoint.safetensors')).meta).toMatchObject(
          name === 'vit'
            ? { model: 'vit', patch: 2, dim: 4, depth: 1, heads: 2, mlpDim: 16 }
            : { model: 'cnn', channels: [2], kernel: 3, hidden: [5] },
        );
      }
    },
  );

  test('the default, a constant lr, keeps the plain optimizer; --warmup alone schedules a warm-up', async () => {
    const records = async (extra: string[]) => {
      const runOut = join(dir, `schedule-${extra.join('-')}`);
      expect(await train([...common, '--out', runOut, '--epochs', '1', ...extra], () => {})).toBe(
        0,
      );
      return readFileSync(join(runOut, 'metrics.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { kind: string; optimizer?: string; hyper?: object });
    };
    const constant = (await records([])).find((r) => r.kind === 'run');
    expect(constant?.optimizer).toBe('ring');
    expect(constant?.hyper).not.toHaveProperty('decaySteps');
    const warm = (await records(['--schedule', 'constant', '--warmup', '3'])).find(
      (r) => r.kind === 'run',
    );
    expect(warm).toMatchObject({ optimizer: 'constant(ring)', hyper: { warmupSteps: 3 } });
    const linear = (await records(['--schedule', 'linear', '--warmup', '2'])).find(
      (r) => r.kind === 'run',
    );
    expect(linear).toMatchObject({
      optimizer: 'linear(ring)',
      hyper: { warmupSteps: 2, decaySteps: 4 },
    });
  });

  test('model recipes: RING and RENG on the ViT and the CNN, nothing changes elsewhere', () => {
    const vit = modelConfig({ model: 'vit' }, {});
    const cnn = modelConfig({ model: 'cnn' }, {});
    const cnnRecipe = { lr: 3e-3, klClip: 1e-3, inverseEvery: 50 };
    for (const name of ['ring', 'reng']) {
      expect(modelRecipe(vit, name)).toEqual({ lr: 3e-3 });
      expect(modelRecipe(cnn, name)).toEqual(cnnRecipe);
    }
    for (const name of ['adamw', 'kfac', 'sgd']) {
      expect(modelRecipe(vit, name)).toEqual({});
      expect(modelRecipe(cnn, name)).toEqual({});
    }
    expect(modelRecipe(modelConfig({ model: 'mlp' }, {}), 'ring')).toEqual({});
    // The CNN's defaults: a dense layer of 128 ('none' drops it) on standardized pixels.
    expect(cnn).toEqual({ model: 'cnn', channels: [16, 32], kernel: 3, hidden: [128] });
    expect(modelConfig({ model: 'cnn', hidden: 'none' }, {})).toMatchObject({ hidden: [] });
    expect(defaultNormalization(cnn)).toBe('standard');
    expect(defaultNormalization(vit)).toBe('unit');
    expect(defaultNormalization(modelConfig({ model: 'mlp' }, {}))).toBe('unit');
  });

  test('bad options are GrngErrors with one clear message; --help prints the usage', async () => {
    await expect(train([...common, '--optimizer', 'lamb'], () => {})).rejects.toThrow(
      /unknown optimizer 'lamb'/,
    );
    await expect(train(['--dataset', 'idx'], () => {})).rejects.toThrow(/--data DIR/);
    await expect(train([...common, '--model', 'resnet'], () => {})).rejects.toThrow(
      /--model must be mlp, vit, cnn/,
    );
    await expect(train([...common, '--patch', '2'], () => {})).rejects.toThrow(
      /--patch is not an option of --model mlp/,
    );
    await expect(
      train([...withoutHidden, '--model', 'vit', '--patch', '3'], () => {}),
    ).rejects.toThrow(/patch 3 must divide the image size 4×4/);
    await expect(train([...common, '--set', 'bogus=1'], () => {})).rejects.toThrow(
      /unknown hyperparameter 'bogus'/,
    );
    await expect(train([...common, '--set', 'lr'], () => {})).rejects.toThrow(/NAME=VALUE/);
    await expect(train([...common, '--validation', '48'], () => {})).rejects.toThrow(
      /validation split/,
    );
    await expect(train([...common, '--normalize', 'zscore'], () => {})).rejects.toThrow(
      /--normalize/,
    );
    await expect(train([...common, '--epochs', 'two'], () => {})).rejects.toThrow(GrngError);
    await expect(train([...common, '--schedule', 'step'], () => {})).rejects.toThrow(
      /--schedule must be constant, linear, cosine, got 'step'/,
    );
    await expect(
      train([...common, '--schedule', 'cosine', '--warmup', '8'], () => {}),
    ).rejects.toThrow(/--warmup \(8 steps\) must be shorter than the run \(8 steps\)/);
    await expect(
      train([...common.slice(0, -2), '--out', join(dir, 'empty'), '--resume'], () => {}),
    ).rejects.toThrow(/no checkpoint/);
    const help: string[] = [];
    expect(await train(['--help'], (l) => help.push(l))).toBe(0);
    expect(help.join('')).toMatch(/--optimizer NAME/);
  });
});
