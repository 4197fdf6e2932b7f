// `grng train` through its entry function on a tiny IDX dataset the test writes: two epochs on
// the float64 interpreter, metrics as JSON Lines, a checkpoint per epoch, --resume continuing to
// a third epoch, and one-line errors for bad options.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { train } from '../../cli/train.js';
import { GrngError } from '../../index.js';
import { loadCheckpoint } from '../../runtime/checkpoint.js';
import { prng } from '../support/random.js';

/** An IDX file of unsigned bytes with `shape`. */
function idx(shape: readonly number[], data: ArrayLike<number>): Buffer {
  const header = Buffer.alloc(4 + 4 * shape.length);
  header.writeUInt8(0x08, 2);
  header.writeUInt8(shape.length, 3);
  shape.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([header, Buffer.from(Uint8Array.from(data))]);
}

/** 4×4 images of three classes (a bright row 0, 1 or 2), 48 train and 12 test. */
function writeDataset(dir: string): void {
  const rng = prng(5);
  for (const [split, count] of [['train', 48], ['t10k', 12]] as const) {
    const labels = Array.from({ length: count }, (_, n) => n % 3);
    const pixels = labels.flatMap((c) => Array.from({ length: 16 }, (_, p) => Math.floor(60 * rng()) + (Math.floor(p / 4) === c ? 190 : 0)));
    writeFileSync(join(dir, `${split}-images-idx3-ubyte`), idx([count, 4, 4], pixels));
    writeFileSync(join(dir, `${split}-labels-idx1-ubyte`), idx([count], labels));
  }
}

describe('grng train', () => {
  const dir = mkdtempSync(join(tmpdir(), 'grng-cli-'));
  writeDataset(dir);
  const out = join(dir, 'run');
  const common = ['--dataset', 'idx', '--data', dir, '--hidden', '8', '--batch-size', '12', '--device', 'cpu', '--out', out, '--optimizer', 'ring', '--lr', '0.05', '--inverse-every', '2'];

  test('two epochs: a line per epoch, metrics.jsonl with every step and epoch, a checkpoint; --resume adds a third epoch', async () => {
    const lines: string[] = [];
    expect(await train([...common, '--epochs', '2'], (l) => lines.push(l))).toBe(0);
    expect(lines.filter((l) => l.startsWith('epoch ')).length).toBe(2);
    const records = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { kind: string; step?: number; testAccuracy?: number });
    expect(records.filter((r) => r.kind === 'step').map((r) => r.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(records.filter((r) => r.kind === 'epoch').length).toBe(2);
    expect(loadCheckpoint(join(out, 'checkpoint.safetensors')).meta).toMatchObject({ step: 8, epoch: 3, position: 0, optimizer: 'ring' });

    const more: string[] = [];
    expect(await train([...common, '--epochs', '3', '--resume'], (l) => more.push(l))).toBe(0);
    expect(more.filter((l) => l.startsWith('epoch ')).map((l) => l.split(':')[0])).toEqual(['epoch 3']);
    const after = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { kind: string; step?: number; testAccuracy?: number });
    expect(after.filter((r) => r.kind === 'step').map((r) => r.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    // Three well-separated classes: RING reaches at least 90 % test accuracy in 12 steps (measured: 100 %).
    expect(after.filter((r) => r.kind === 'epoch').at(-1)?.testAccuracy).toBeGreaterThanOrEqual(0.9);
  });

  test('bad options are GrngErrors with one clear message; --help prints the usage', async () => {
    await expect(train([...common, '--optimizer', 'lamb'], () => {})).rejects.toThrow(/unknown optimizer 'lamb'/);
    await expect(train(['--dataset', 'idx'], () => {})).rejects.toThrow(/--data DIR/);
    await expect(train([...common, '--epochs', 'two'], () => {})).rejects.toThrow(GrngError);
    await expect(train([...common.slice(0, -2), '--out', join(dir, 'empty'), '--resume'], () => {})).rejects.toThrow(/no checkpoint/);
    const help: string[] = [];
    expect(await train(['--help'], (l) => help.push(l))).toBe(0);
    expect(help.join('')).toMatch(/--optimizer NAME/);
  });
});
