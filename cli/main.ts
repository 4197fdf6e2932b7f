#!/usr/bin/env node
// The `grng` command; commands (train, bench, ...) join as their issues land.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GrngError } from '../core/errors.js';

const USAGE = `Usage: grng <command> [options]

Commands:
  doctor [--all]     show the WebGPU adapter grng uses here (--all: every path it can try)
  train [options]    train an MLP on Fashion-MNIST or any IDX image dataset (grng train --help)
  merge <checkpoint> fold a LoRA run's adapters into its base weights (grng merge --help)
  compare [options]  train with several optimizers under one budget; table and plots (grng compare --help)
  compile <file.ts>  check an optimizer file for purity and compile it to WGSL + a loadable module (grng compile --help)

Options:
  -h, --help         show this help
  -v, --version      print the grng version
  --verbose          print an error's details (e.g. every argument of a failed trace) and stack
`;

// Walks up from this file to grng's own package.json: from dist/cli/main.js that is
// ../../package.json, and the walk also works when run from source (cli/main.ts).
function version(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const pkg: unknown = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
      if (
        typeof pkg === 'object' &&
        pkg !== null &&
        'name' in pkg &&
        pkg.name === 'grng' &&
        'version' in pkg &&
        typeof pkg.version === 'string'
      ) {
        return pkg.version;
      }
    } catch {
      // No readable package.json here; keep climbing.
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error('grng: cannot find its own package.json');
    dir = parent;
  }
}

async function main(argv: readonly string[]): Promise<number> {
  const [command] = argv;
  if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (command === '-v' || command === '--version') {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  if (command === 'doctor') {
    // Imported here so --help and --version never load the native WebGPU module.
    const { doctor } = await import('./doctor.js');
    return doctor(argv.slice(1), (text) => process.stdout.write(text));
  }
  const print = (text: string) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  if (command === 'train') {
    const { train } = await import('./train.js');
    return train(argv.slice(1), print, process.stdout.isTTY === true);
  }
  if (command === 'compile') {
    const { compile } = await import('../aot/compile-command.js');
    const limitsHere = async () => {
      const { createDevice } = await import('../runtime/create-device.js');
      const device = await createDevice();
      if (device.kind !== 'webgpu') throw new Error('--limits here needs a WebGPU adapter');
      const l = (device as unknown as { gpu: GPUDevice }).gpu.limits;
      return {
        maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
        maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
        maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
        maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      };
    };
    return compile(argv.slice(1), print, limitsHere);
  }
  if (command === 'merge') {
    const { merge } = await import('./merge.js');
    return merge(argv.slice(1), print);
  }
  if (command === 'compare') {
    const { compare } = await import('./compare.js');
    return compare(argv.slice(1), print, process.stdout.isTTY === true);
  }
  process.stderr.write(`grng: unknown command '${command}'\n\n${USAGE}`);
  return 2;
}

/**
 * The message of `error` as one line. node:util's parseArgs refuses an unknown option or a missing
 * value with a message that says neither what the command takes nor where to look, and (for
 * unknown options) continues over several sentences: it is cut to its first one and pointed at
 * the command's --help.
 */
function oneLine(error: unknown, command: string | undefined): string {
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: unknown } | null)?.code;
  if (
    typeof code === 'string' &&
    code.startsWith('ERR_PARSE_ARGS_') &&
    command !== undefined &&
    !command.startsWith('-')
  ) {
    const first = message.split('\n')[0].replace(/\. To specify a positional argument.*$/, '');
    return `${first.replace(/\.$/, '')}; grng ${command} --help lists its options`;
  }
  return message;
}

/** Errors as one clear line (GrngError, bad options); a stack trace only with --verbose. */
async function run(argv: readonly string[]): Promise<number> {
  const verbose = argv.includes('--verbose');
  const args = argv.filter((a) => a !== '--verbose');
  try {
    return await main(args);
  } catch (error) {
    process.stderr.write(`grng: ${oneLine(error, args[0])}\n`);
    if (verbose && error instanceof GrngError && error.details !== undefined)
      process.stderr.write(`${error.details}\n`);
    if (verbose && error instanceof Error && error.stack !== undefined)
      process.stderr.write(`${error.stack}\n`);
    return 1;
  }
}

process.exitCode = await run(process.argv.slice(2));
