#!/usr/bin/env node
// `npm run demo:finetune`: the paper's setting at laptop scale. A tiny ViT is pretrained on
// Fashion-MNIST's first five classes (tops, trousers, pullovers, dresses, coats), unless its
// checkpoint is already there; then LoRA adapters (rank 4 on every block's query and value
// projections, with a trained head) fine-tune it on the five classes it never saw (sandals,
// shirts, sneakers, bags, ankle boots) from 1000 images, with AdamW, K-FAC, Sophia, RING, RENG
// (Lazy Fisher S = 4) and R-Kalman (batch 1, β = 0.96, σ₀ = 0.2) under one budget of epochs. Each
// optimizer's step size is chosen among a tenth, one and ten times its default on a held-out
// validation split, with the same budget. grng compare writes the table (compare.md) and the
// plots. Environment overrides: GRNG_FINETUNE_OUT (default runs/finetune), GRNG_FINETUNE_EPOCHS
// (default 3),
// GRNG_FINETUNE_OPTIMIZERS (default adamw,kfac,sophia,ring,reng,rkalman).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { compare } from '../dist/cli/compare.js';
import { train } from '../dist/cli/train.js';

const out = process.env.GRNG_FINETUNE_OUT ?? 'runs/finetune';
const tty = process.stdout.isTTY === true;
const print = (line) => process.stdout.write(line.endsWith('\n') ? line : `${line}\n`);
const vit = ['--model', 'vit', '--patch', '7', '--dim', '32', '--depth', '2', '--heads', '4'];
const pretrained = join(out, 'pretrain', 'checkpoint.safetensors');

try {
  if (existsSync(pretrained)) print(`grng demo:finetune: the pretrained ViT is ${pretrained}`);
  else {
    const pretrain = ['--classes', '0-4', '--optimizer', 'adamw', '--lr', '0.003', '--epochs', '2'];
    const code = await train([...vit, ...pretrain, '--out', join(out, 'pretrain')], print, tty);
    if (code !== 0) throw new Error(`pretraining exited with ${code}`);
  }
  const finetune = [
    ...['--classes', '5-9', '--limit', '1000', '--validation', '1000'],
    ...['--init', pretrained, '--lora', 'rank=4,alpha=8,targets=q,v'],
    ...[
      '--optimizers',
      process.env.GRNG_FINETUNE_OPTIMIZERS ?? 'adamw,kfac,sophia,ring,reng,rkalman',
    ],
    ...['--lr-sweep', '0.1,1,10', '--epochs', process.env.GRNG_FINETUNE_EPOCHS ?? '3'],
    ...['--batch-size', '32', '--evals-per-epoch', '2', '--target', '0.9'],
    ...['--set', 'ring.inverseEvery=4', '--set', 'reng.inverseEvery=4'],
    ...[
      '--set',
      'rkalman.batchSize=1',
      '--set',
      'rkalman.beta=0.96',
      '--set',
      'rkalman.sigma0=0.2',
    ],
    // The adapters and the head, all Kalman-managed. Fading memory inflates the variance of
    // directions the data never informs by β⁻ᵗ (0.96⁻¹⁰⁰⁰ ≈ e⁴⁰ over an epoch at batch 1): capped
    // at the prior, as docs/algorithms.md §5 advises; uncapped, the filter diverged here.
    ...['--set', 'rkalman.params=all', '--set', 'rkalman.varianceCap=0.2'],
  ];
  process.exitCode = await compare(
    [...vit, ...finetune, '--out', join(out, 'compare')],
    print,
    tty,
  );
} catch (error) {
  process.stderr.write(
    `grng demo:finetune: ${error instanceof Error ? error.message : String(error)}\n`,
  );
  process.exitCode = 1;
}
