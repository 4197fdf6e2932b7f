// The transfer workflow through the CLI on a tiny IDX dataset (float64 interpreter): pretrain,
// `--init` from that checkpoint, `--lora` adapters with the head, a checkpoint of what trained
// only, an exact resume, and `grng merge` giving W + (α/r)·B·A.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { merge } from '../../cli/merge.js';
import { train } from '../../cli/train.js';
import { HostArray } from '../../core/host-array.js';
import { leafPaths } from '../../core/tree-paths.js';
import { loadCheckpoint } from '../../runtime/checkpoint.js';
import { writeDataset } from '../support/idx-dataset.js';

const isHost = (x: unknown): x is HostArray => x instanceof HostArray;

type Dense = { w: HostArray; b: HostArray };

describe('grng train --init / --lora, grng merge', () => {
  const dir = mkdtempSync(join(tmpdir(), 'grng-finetune-'));
  writeDataset(dir);
  const args = (out: string, ...more: string[]) => [
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
    '--optimizer',
    'adamw',
    '--lr',
    '0.05',
    '--out',
    join(dir, out),
    ...more,
  ];
  const checkpoint = (out: string) => join(dir, out, 'checkpoint.safetensors');
  const quiet = () => undefined;
  const lora = ['--init', checkpoint('pre'), '--lora', 'rank=2,alpha=4,targets=layers.0'];

  test('a LoRA run saves the adapters and the head only; merge gives W + (α/r)·B·A', async () => {
    expect(await train(args('pre', '--epochs', '1'), quiet)).toBe(0);
    const lines: string[] = [];
    expect(await train(args('tune', ...lora, '--epochs', '1'), (l) => lines.push(l))).toBe(0);
    expect(lines[0]).toMatch(/MLP 16-8-3 from .*pre.*, LoRA rank 2 α 4 on 1 layers \+ layers\.1/);

    const pre = loadCheckpoint(checkpoint('pre')).trees.params as { layers: Dense[] };
    const tuned = loadCheckpoint(checkpoint('tune'));
    expect(leafPaths('test', tuned.trees.params, isHost, 'an array').sort()).toEqual([
      'base.layers.1.b',
      'base.layers.1.w',
      'lora.layers.0.a',
      'lora.layers.0.b',
    ]);
    expect(tuned.meta).toMatchObject({ init: checkpoint('pre'), lora: { rank: 2, alpha: 4 } });
    const { base, lora: adapters } = tuned.trees.params as {
      base: { layers: Dense[] };
      lora: { layers: { a: HostArray; b: HostArray }[] };
    };

    const out = join(dir, 'merged.safetensors');
    expect(await merge([checkpoint('tune'), '--out', out], quiet)).toBe(0);
    const merged = loadCheckpoint(out).trees.params as { layers: Dense[] };
    // Layer 0: the pretrained W plus s·B·A with s = 4/2, summed over the rank in order (float64).
    const { a, b } = adapters.layers[0];
    const w = pre.layers[0].w;
    const want = Array.from(w.data, (v, k) => {
      const [i, j] = [Math.floor(k / 16), k % 16];
      return v + 2 * (b.data[i * 2] * a.data[j] + b.data[i * 2 + 1] * a.data[16 + j]);
    });
    expect(Array.from(merged.layers[0].w.data)).toEqual(want);
    expect(b.data.some((v) => v !== 0)).toBe(true); // the adapters did train
    // The frozen bias as pretrained; the head as fine-tuned.
    expect(Array.from(merged.layers[0].b.data)).toEqual(Array.from(pre.layers[0].b.data));
    expect(Array.from(merged.layers[1].w.data)).toEqual(Array.from(base.layers[1].w.data));
    expect(Array.from(merged.layers[1].w.data)).not.toEqual(Array.from(pre.layers[1].w.data));
    // The merged file is a plain model: a run starts from it.
    expect(await train(args('again', '--init', out, '--epochs', '1'), quiet)).toBe(0);
  });

  test('--resume of a LoRA run continues bit for bit', async () => {
    expect(await train(args('pre2', '--epochs', '1'), quiet)).toBe(0);
    const from = ['--init', checkpoint('pre2'), '--lora', 'rank=1,targets=layers.0,layers.1'];
    expect(await train(args('straight', ...from, '--epochs', '2'), quiet)).toBe(0);
    expect(await train(args('split', ...from, '--epochs', '1'), quiet)).toBe(0);
    expect(await train(args('split', ...from, '--epochs', '2', '--resume'), quiet)).toBe(0);
    const read = (out: string) => {
      const c = loadCheckpoint(checkpoint(out));
      const { leaves } = { leaves: leafPaths('test', c.trees.params, isHost, 'an array') };
      return { paths: leaves, trees: c.trees };
    };
    const [straight, split] = [read('straight'), read('split')];
    expect(split.paths).toEqual(straight.paths);
    expect(split.trees).toEqual(straight.trees);
  });

  test('bad transfers are one-line errors', async () => {
    expect(await train(args('pre3', '--epochs', '1'), quiet)).toBe(0);
    const wider = args('x', '--init', checkpoint('pre3'), '--epochs', '1').map((v) =>
      v === '8' ? '6' : v,
    );
    await expect(train(wider, quiet)).rejects.toThrow(
      /--init: .* has layers\.0\.b of shape 8, this model 6/,
    );
    await expect(
      train(args('x', '--lora', 'rank=2,alpha', '--epochs', '1'), quiet),
    ).rejects.toThrow(/--lora: 'alpha' has no value \(KEY=VALUE\)/);
    await expect(train(args('x', '--lora', 'size=2', '--epochs', '1'), quiet)).rejects.toThrow(
      /--lora: unknown key 'size'/,
    );
    await expect(
      train(args('x', '--lora', 'rank=2,targets=q', '--epochs', '1'), quiet),
    ).rejects.toThrow(/target 'q' matches no dense layer; the model's dense layers are layers\.0/);
    expect(
      await train(
        args(
          't3',
          '--init',
          checkpoint('pre3'),
          '--lora',
          'rank=1,targets=layers.0',
          '--epochs',
          '1',
        ),
        quiet,
      ),
    ).toBe(0);
    await expect(
      train(args('x', '--init', checkpoint('t3'), '--epochs', '1'), quiet),
    ).rejects.toThrow(/holds LoRA adapters, not a whole model; merge them/);
    await expect(
      merge([checkpoint('pre3'), '--out', join(dir, 'm.safetensors')], quiet),
    ).rejects.toThrow(/is not a LoRA run/);
  });
});
