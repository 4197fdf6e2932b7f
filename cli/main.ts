#!/usr/bin/env node
// The `grng` command. It imports nothing from the library yet, so it builds and runs even
// while the core is in pieces; commands (train, bench, ...) join as their issues land.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const USAGE = `Usage: grng <command> [options]

Options:
  -h, --help       show this help
  -v, --version    print the grng version

No commands are available yet; training and benchmarks arrive with their issues.
`;

// Walks up from this file to grng's own package.json: from dist/cli/main.js that is
// ../../package.json, and the walk also works when run from source (cli/main.ts).
function version(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const pkg: unknown = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
      if (typeof pkg === 'object' && pkg !== null && 'name' in pkg && pkg.name === 'grng'
        && 'version' in pkg && typeof pkg.version === 'string') {
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

function main(argv: readonly string[]): number {
  const [command] = argv;
  if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (command === '-v' || command === '--version') {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  process.stderr.write(`grng: unknown command '${command}'\n\n${USAGE}`);
  return 2;
}

process.exitCode = main(process.argv.slice(2));
