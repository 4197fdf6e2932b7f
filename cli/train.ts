// `grng train`: trains an MLP on an IDX image dataset (Fashion-MNIST by default) with a built-in
// optimizer through the Trainer: a progress line per 100 steps (or a self-rewriting one on a TTY),
// metrics as JSON Lines and a checkpoint after every epoch in --out, --resume from it.
import { appendFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { GrngError } from '../compiler/errors.js';
import { nn } from '../dsl/nn/index.js';
import type { Optimizer } from '../dsl/optimizer.js';
import { adam, adamw, kfac, reng, ring, rkalman, sgd, sophia } from '../optimizers/index.js';
import { createDevice } from '../runtime/create-device.js';
import { FASHION_MNIST_DIR, loadIdxImages } from '../runtime/data/index.js';
import { createTrainer } from '../runtime/trainer.js';

export const TRAIN_USAGE = `Usage: grng train [options]

Trains an MLP on an image-classification dataset in the four-file IDX layout.

Options:
  --dataset NAME     fashion-mnist (default: ${FASHION_MNIST_DIR}) or idx (needs --data)
  --data DIR         the directory holding the IDX files
  --hidden N,...     hidden layer sizes of the MLP (default 256)
  --optimizer NAME   ring (default), reng, rkalman, kfac, sophia, adamw, adam, sgd
  --lr X             learning rate (each optimizer's default otherwise)
  --rho X            gradient-regularization strength (ring, reng, rkalman)
  --inverse-every N  Lazy Fisher period (ring, reng, kfac)
  --epochs N         epochs to train (default 2)
  --batch-size N     default 128
  --seed N           initial parameters, shuffles and step keys (default 0)
  --device KIND      webgpu (default) or cpu (the float64 interpreter)
  --out DIR          metrics.jsonl and checkpoint.safetensors go here (default runs/train)
  --resume           continue from DIR/checkpoint.safetensors
  -h, --help         show this help
`;

const OPTIMIZERS: Record<string, (s: Record<string, number>) => Optimizer<never, unknown>> = {
  ring: (s) => ring(s) as never,
  reng: (s) => reng(s) as never,
  rkalman: (s) => rkalman(s) as never,
  kfac: (s) => kfac(s) as never,
  sophia: (s) => sophia(s) as never,
  adamw: (s) => adamw(s) as never,
  adam: (s) => adam(s) as never,
  sgd: (s) => sgd(s) as never,
};

/** Runs `grng train` with `argv` (after the command name); returns the exit code. */
export async function train(argv: readonly string[], print: (line: string) => void, isTty = false): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      dataset: { type: 'string', default: 'fashion-mnist' },
      data: { type: 'string' },
      hidden: { type: 'string', default: '256' },
      optimizer: { type: 'string', default: 'ring' },
      lr: { type: 'string' },
      rho: { type: 'string' },
      'inverse-every': { type: 'string' },
      epochs: { type: 'string', default: '2' },
      'batch-size': { type: 'string', default: '128' },
      seed: { type: 'string', default: '0' },
      device: { type: 'string', default: 'webgpu' },
      out: { type: 'string', default: 'runs/train' },
      resume: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    print(TRAIN_USAGE);
    return 0;
  }
  const number = (name: string, text: string | undefined, integer = false): number | undefined => {
    if (text === undefined) return undefined;
    const n = Number(text);
    if (!Number.isFinite(n) || (integer && !Number.isInteger(n))) throw new GrngError('train', `--${name} must be ${integer ? 'an integer' : 'a number'}, got '${text}'`);
    return n;
  };
  if (values.dataset !== 'fashion-mnist' && values.dataset !== 'idx') throw new GrngError('train', `--dataset must be fashion-mnist or idx, got '${values.dataset}'`);
  if (values.dataset === 'idx' && values.data === undefined) throw new GrngError('train', '--dataset idx needs --data DIR');
  const make = OPTIMIZERS[values.optimizer];
  if (make === undefined) throw new GrngError('train', `unknown optimizer '${values.optimizer}'; choose ${Object.keys(OPTIMIZERS).join(', ')}`);
  if (values.device !== 'webgpu' && values.device !== 'cpu') throw new GrngError('train', `--device must be webgpu or cpu, got '${values.device}'`);
  const settings = Object.fromEntries(
    [['lr', number('lr', values.lr)], ['rho', number('rho', values.rho)], ['inverseEvery', number('inverse-every', values['inverse-every'], true)]].filter(([, v]) => v !== undefined),
  ) as Record<string, number>;
  const hidden = values.hidden.split(',').filter((s) => s !== '').map((s) => number('hidden', s, true) as number);
  const epochs = number('epochs', values.epochs, true) as number;

  const data = loadIdxImages(values.data ?? FASHION_MNIST_DIR);
  const device = await createDevice(values.device === 'cpu' ? { kind: 'cpu' } : {});
  const optimizer = make(settings);
  const model = nn.mlp([data.train.features, ...hidden, data.classes]);
  const out = values.out;
  mkdirSync(out, { recursive: true });
  const checkpoint = join(out, 'checkpoint.safetensors');
  const metricsFile = join(out, 'metrics.jsonl');
  if (values.resume && !existsSync(checkpoint)) throw new GrngError('train', `--resume: no checkpoint at ${checkpoint}`);
  if (!values.resume) writeFileSync(metricsFile, '');
  const log = (record: object) => appendFileSync(metricsFile, `${JSON.stringify(record)}\n`);
  print(`grng train: ${data.train.count} train / ${data.test.count} test images, ${data.classes} classes, MLP ${[data.train.features, ...hidden, data.classes].join('-')}, ${optimizer.name} on ${device.description}`);

  let started = performance.now();
  const trainer = await createTrainer(
    {
      model,
      optimizer,
      data,
      device,
      batchSize: number('batch-size', values['batch-size'], true),
      seed: number('seed', values.seed, true),
      onStep: ({ epoch, step, position, metrics }) => {
        log({ kind: 'step', epoch, step, position, ...metrics });
        const line = `epoch ${epoch} step ${position}  loss ${metrics.loss.toFixed(4)}  acc ${(100 * (metrics.accuracy ?? 0)).toFixed(1)} %  ${((1000 * position) / (performance.now() - started)).toFixed(1)} steps/s`;
        if (isTty) process.stdout.write(`\r${line}`);
        else if (position % 100 === 0) print(line);
      },
    },
    values.resume ? checkpoint : undefined,
  );
  while (trainer.epoch <= epochs) {
    started = performance.now();
    const [record] = await trainer.fit(trainer.epoch);
    if (isTty) process.stdout.write('\n');
    log({ kind: 'epoch', ...record });
    await trainer.save(checkpoint, { model: 'mlp', hidden });
    print(`epoch ${record.epoch}: train loss ${record.trainLoss.toFixed(4)}, test accuracy ${(100 * record.testAccuracy).toFixed(2)} %, ${record.seconds.toFixed(1)} s; checkpoint ${checkpoint}`);
  }
  print(`metrics: ${metricsFile}`);
  return 0;
}
