#!/usr/bin/env node
// `npm run demo`: `grng train` on Fashion-MNIST with RING on WebGPU — an MLP 784-256-10, one
// compiled program per step, parameters and optimizer state resident on the device — printing
// progress, the test accuracy after each epoch, and where the metrics, plots and checkpoint are.
// The pre-script installs what is missing and builds dist/. Environment overrides:
// GRNG_DEMO_OPTIMIZER (any of grng train's), GRNG_DEMO_LR, GRNG_DEMO_EVERY, GRNG_DEMO_EPOCHS,
// GRNG_DEMO_OUT.
import { train } from '../dist/cli/train.js';

const optimizer = process.env.GRNG_DEMO_OPTIMIZER ?? 'ring';
const args = [
  '--optimizer',
  optimizer,
  '--epochs',
  process.env.GRNG_DEMO_EPOCHS ?? '2',
  '--out',
  process.env.GRNG_DEMO_OUT ?? `runs/demo/${optimizer}`,
];
if (process.env.GRNG_DEMO_LR !== undefined) args.push('--lr', process.env.GRNG_DEMO_LR);
// Lazy Fisher period: refreshing the 785×785 first-layer inverse takes seconds on a software
// adapter, so the demo refreshes every 50 steps (spec default 10).
if (['ring', 'reng'].includes(optimizer))
  args.push('--inverse-every', process.env.GRNG_DEMO_EVERY ?? '50');

const print = (line) => process.stdout.write(line.endsWith('\n') ? line : `${line}\n`);
try {
  process.exitCode = await train(args, print, process.stdout.isTTY === true);
} catch (error) {
  process.stderr.write(`grng demo: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
}
