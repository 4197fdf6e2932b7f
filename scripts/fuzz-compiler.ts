// Compiler fuzz (`npm run fuzz -- --runs 10000 --seed N`, or
// `node --import tsx scripts/fuzz-compiler.ts …`): random programs (test/support/fuzz-programs.ts)
// run through jit on WebGPU and on the float32 interpreter. Every program must agree within its
// error bound or be refused with a GrngError; anything else is a failure, shrunk by fast-check
// and printed with the seed and path that replay it (`--replay SEED:PATH`). A sample of it runs
// in `npm test` (test/compiler/fuzz-sample.test.ts).
//
// Options: --runs N (default 10000), --seed N (default: the time), --large W and --huge W (size
// class weights, default 4 and 0.2 against small 76 and medium 20), --replay SEED[:PATH],
// --verbose (print each program before running it).
import fc from 'fast-check';
import { parseArgs } from 'node:util';
import { createDevice } from '../index.js';
import { WebGpuDevice } from '../runtime/webgpu-device.js';
import { fuzzProgramArb, type FuzzProgram, type SizeClass } from '../test/support/fuzz-programs.js';
import { runProgram, type Outcome } from '../test/support/fuzz-run.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '10000' },
    seed: { type: 'string', default: String(Date.now() % 2 ** 31) },
    large: { type: 'string', default: '4' },
    huge: { type: 'string', default: '0.2' },
    replay: { type: 'string' },
    verbose: { type: 'boolean', default: false },
  },
});
const runs = Number(values.runs);
const seed = Number(values.seed);
const arb = fuzzProgramArb({ weights: { large: Number(values.large), huge: Number(values.huge) } });

// A fresh device now and then (and after each large program): compiled programs and pooled
// buffers of thousands of different programs would otherwise pile up.
let device: WebGpuDevice | undefined;
let usedFor = 0;
async function gpu(): Promise<WebGpuDevice> {
  if (device === undefined || usedFor >= 250) {
    device?.gpu.destroy();
    const d = await createDevice();
    if (!(d instanceof WebGpuDevice)) throw new Error(`expected WebGPU, got ${d.description}`);
    [device, usedFor] = [d, 0];
  }
  usedFor++;
  return device;
}

/**
 * fast-check's report of a failure, with the error (the reason and where the results differ) and
 * the command that replays it (the size weights are part of what the seed draws).
 */
const report = (details: fc.RunDetails<[FuzzProgram]>) =>
  `${fc.defaultReportMessage(details)}\n${String(details.errorInstance)}\nreplay: npm run fuzz -- ` +
  `--large ${values.large} --huge ${values.huge} --replay ${details.seed}:${details.counterexamplePath}`;

/** One program: fast-check runs it, and shrinks it if it fails. */
async function check(params: fc.Parameters<[FuzzProgram]>) {
  let first: { program: FuzzProgram; outcome: Outcome; ms: number } | undefined;
  const property = fc.asyncProperty(arb, async (p) => {
    if (values.verbose) console.log(String(p));
    const start = performance.now();
    const outcome = await runProgram(p, await gpu());
    if (p.size === 'large' || p.size === 'huge') usedFor = Infinity;
    first ??= { program: p, outcome, ms: performance.now() - start };
    if (outcome.kind === 'failed') throw new Error(`${outcome.reason}: ${outcome.message}`);
  });
  // Shrinking a large program re-runs it for each candidate: at most 15 minutes of it.
  const details = await fc.check(property, {
    numRuns: 1,
    unbiased: true,
    interruptAfterTimeLimit: 15 * 60_000,
    ...params,
  });
  return { details, first };
}

if (values.replay !== undefined) {
  const [s, ...path] = values.replay.split(':');
  const { details } = await check({
    seed: Number(s),
    ...(path.length > 0 ? { path: path.join(':') } : {}),
  });
  console.log(details.failed ? report(details) : 'the program passes');
  process.exit(details.failed ? 1 : 0);
}

console.log(
  `compiler fuzz: ${runs} programs, seed ${seed} (program i replays with seed ${seed}+i)`,
);
const counts = { agree: 0, refused: 0, failed: 0 };
const refusals = new Map<string, number>();
const failures: string[] = [];
const bySize = new Map<SizeClass, { n: number; ms: number }>();
let [pastWorkgroups, pastBinding, checked, unchecked, worst] = [0, 0, 0, 0, 0];
const started = performance.now();
for (let i = 0; i < runs; i++) {
  const programSeed = (seed + i) | 0;
  let result;
  try {
    result = await check({ seed: programSeed });
  } catch (error) {
    counts.failed++;
    failures.push(`program ${i} (seed ${programSeed}): the harness threw ${String(error)}`);
    continue;
  }
  const { details, first } = result;
  if (first === undefined) continue;
  const { program, outcome, ms } = first;
  const size = bySize.get(program.size) ?? { n: 0, ms: 0 };
  bySize.set(program.size, { n: size.n + 1, ms: size.ms + ms });
  if (program.largestArray > 2 ** 25) pastBinding++;
  if (details.failed || outcome.kind === 'failed') {
    counts.failed++;
    failures.push(`program ${i}:\n${report(details)}`);
    console.log(`FAILED program ${i}:\n${report(details)}`);
  } else if (outcome.kind === 'refused') {
    counts.refused++;
    refusals.set(outcome.reason, (refusals.get(outcome.reason) ?? 0) + 1);
  } else {
    counts.agree++;
    checked += outcome.checked;
    unchecked += outcome.unchecked;
    worst = Math.max(worst, outcome.worst);
    if (outcome.workgroups > 65535) pastWorkgroups++;
  }
  if (program.size === 'large' || program.size === 'huge')
    console.log(
      `  program ${i}: ${program.size}, ${outcome.kind}` +
        `${outcome.kind === 'agree' ? ` (${outcome.workgroups} workgroups)` : `: ${outcome.reason}`}` +
        `, ${(ms / 1000).toFixed(1)} s`,
    );
  if ((i + 1) % 100 === 0 || i + 1 === runs) {
    const minutes = (performance.now() - started) / 60000;
    const left = (minutes / (i + 1)) * (runs - i - 1);
    console.log(
      `[${i + 1}/${runs}] agree ${counts.agree}, refused ${counts.refused}, ` +
        `failed ${counts.failed}; ${minutes.toFixed(1)} min, ~${left.toFixed(0)} min to go`,
    );
  }
}

console.log(`\n== compiler fuzz, seed ${seed} ==`);
console.log(`programs run: ${counts.agree + counts.refused + counts.failed}`);
console.log(`agreed: ${counts.agree} (${checked} elements compared, ${unchecked} left unchecked)`);
console.log(`  worst |gpu − interpreter| / (2·bound): ${worst.toExponential(2)}`);
console.log(`  past 65535 workgroups in a dispatch: ${pastWorkgroups}`);
console.log(`programs with an array past 128 MiB (stored or virtual): ${pastBinding}`);
console.log(`refused with a GrngError: ${counts.refused}`);
for (const [kind, n] of [...refusals].sort((a, b) => b[1] - a[1])) console.log(`  ${n}× ${kind}`);
console.log(`failed: ${counts.failed}`);
failures.forEach((f) => console.log(f));
for (const [size, { n, ms }] of bySize)
  console.log(`  ${size}: ${n} programs, ${(ms / n / 1000).toFixed(2)} s each`);
device?.gpu.destroy();
process.exit(counts.failed > 0 ? 1 : 0);
