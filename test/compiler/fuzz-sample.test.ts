// A sample of the compiler fuzz (scripts/fuzz-compiler.ts, `npm run fuzz`): random programs over
// every dtype and most of the DSL's ops (test/support/fuzz-programs.ts), run through jit on
// WebGPU and on the float32 interpreter, must agree or be refused with a GrngError — never WGSL
// the device rejects, never another error, never a wrong answer. Plus a program the draw reaches
// rarely: a dispatch past 65535 workgroups (arrays past the storage binding size:
// test/runtime/windowed-bindings.test.ts).
//
// Bound: each element of each output within 2E of the interpreter's, where E bounds how far ANY
// float32 evaluation within WGSL's accuracy allowances can be from the float64 value: a rounding
// error analysis run alongside a float64 evaluation (test/support/error-bounds.ts says which
// allowances, and why sin/cos use the software adapters' rather than WGSL's). The interpreter is
// held to E itself, which checks the analysis.
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { add, cast, iota, mul } from '../../index.js';
import { fuzzProgramArb, programOf } from '../support/fuzz-programs.js';
import { runProgram } from '../support/fuzz-run.js';
import { gpuDevice } from '../support/gpu.js';

const RUNS = 60;

describe('the compiler fuzz, a sample', () => {
  test(`${RUNS} random programs agree with the interpreter or are refused`, async () => {
    const gpu = await gpuDevice();
    const seen = { agree: 0, refused: 0, failed: 0 };
    let worst = 0;
    await fc.assert(
      fc.asyncProperty(fuzzProgramArb({ weights: { large: 0, huge: 0 } }), async (p) => {
        const outcome = await runProgram(p, gpu);
        seen[outcome.kind]++;
        if (outcome.kind === 'agree') worst = Math.max(worst, outcome.worst);
        // within 2E everywhere, or refused with a GrngError (see the file comment)
        expect(outcome.kind === 'failed' ? `${outcome.reason}: ${outcome.message}` : 'ok').toBe(
          'ok',
        );
      }),
      { numRuns: RUNS, unbiased: true },
    );
    console.log(
      `fuzz sample: ${seen.agree} agreed (worst |gpu − ref| / 2E ${worst.toExponential(2)}), ` +
        `${seen.refused} refused`,
    );
  });

  test('a dispatch past 65535 workgroups of 64 agrees', async () => {
    // 4194319 > 65535 · 64 elements in a kernel that cannot run on vec4s (casts, iota, i32)
    const n = 4194319;
    const p = programOf(
      'large',
      [{ shape: [n], dtype: 'f32', asNumber: false }],
      [
        {
          args: [0],
          text: `i32(v0 * 4) + iota([${n}])`,
          build: ([t]) => add(cast(mul(t, 4), 'i32'), iota([n], 0)),
        },
      ],
    );
    const outcome = await runProgram(p, await gpuDevice());
    expect(outcome).toMatchObject({ kind: 'agree', unchecked: 0 });
    if (outcome.kind === 'agree') expect(outcome.workgroups).toBeGreaterThan(65535);
  });
});
