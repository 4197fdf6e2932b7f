#!/usr/bin/env node
// `npm run bench [-- --adapter llvmpipe|swiftshader|gpu]
// [--only adamw,mlp,matmul,transformer,optimizers,sizes,vit-sizes]`: runs bench/bench.bench.ts
// under vitest (which runs TypeScript directly) with the choices passed as environment variables,
// since vitest refuses options it does not know.
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';

const ADAPTERS = ['llvmpipe', 'swiftshader', 'gpu'];
const SECTIONS = ['adamw', 'mlp', 'matmul', 'transformer', 'optimizers', 'sizes', 'vit-sizes'];
let values;
try {
  ({ values } = parseArgs({
    options: {
      adapter: { type: 'string', default: 'llvmpipe' },
      only: { type: 'string' },
      help: { type: 'boolean' },
    },
  }));
} catch (error) {
  console.error(`npm run bench: ${error.message}`);
  process.exit(2);
}
if (values.help) {
  console.log(`npm run bench -- [--adapter ${ADAPTERS.join('|')}] [--only ${SECTIONS.join(',')}]`);
  process.exit(0);
}
if (!ADAPTERS.includes(values.adapter)) {
  console.error(
    `npm run bench: --adapter must be one of ${ADAPTERS.join(', ')}, got "${values.adapter}"`,
  );
  process.exit(2);
}
const unknown = (values.only ?? '').split(',').filter((s) => s !== '' && !SECTIONS.includes(s));
if (unknown.length > 0) {
  console.error(
    `npm run bench: unknown section(s) ${unknown.join(', ')}; --only takes ${SECTIONS.join(',')}`,
  );
  process.exit(2);
}
const env = {
  ...process.env,
  GRNG_BENCH_ADAPTER: values.adapter,
  ...(values.only ? { GRNG_BENCH_ONLY: values.only } : {}),
};
const result = spawnSync('npx', ['vitest', 'run', '--config', 'vitest.bench.config.ts'], {
  stdio: 'inherit',
  env,
});
process.exit(result.status ?? 1);
