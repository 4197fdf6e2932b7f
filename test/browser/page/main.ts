/// <reference lib="dom" />
// The browser page: opens WebGPU devices through navigator.gpu at both feature levels, runs
// every case on each and on the f32 interpreter (in this page too), and reports the errors.
// The Node test waits for the marker attribute, set last, whether the run worked or threw.
import { createDevice, type Device } from '../../../index.js';
import { CASES, type CaseRun } from './cases.js';
import { MARKER, type AdapterResult, type CaseResult, type PageReport } from './report.js';

const REQUESTS = [
  { request: 'default', options: {} },
  { request: 'compatibility', options: { featureLevel: 'compatibility' } },
] as const;

function worstError(got: CaseRun, want: CaseRun): number {
  if (got.outputs.length !== want.outputs.length)
    throw new Error(`${got.outputs.length} outputs, expected ${want.outputs.length}`);
  let worst = 0;
  got.outputs.forEach((g, k) => {
    const w = want.outputs[k];
    if (g.length !== w.length)
      throw new Error(`output ${k} has ${g.length} values, expected ${w.length}`);
    // A NaN anywhere makes worst NaN (Math.max propagates it); JSON turns it into null.
    w.forEach((ref, i) => (worst = Math.max(worst, Math.abs(g[i] - ref) / (1 + Math.abs(ref)))));
  });
  return worst;
}

async function runAll(): Promise<AdapterResult[]> {
  const cpu = await createDevice({ kind: 'cpu', precision: 'f32' });
  const want = new Map<string, CaseRun>();
  for (const c of CASES) want.set(c.name, await c.run(cpu));
  const results: AdapterResult[] = [];
  for (const { request, options } of REQUESTS) {
    const gpu: Device = await createDevice(options);
    const cases: CaseResult[] = [];
    let unconsumed = 0;
    for (const c of CASES) {
      const got = await c.run(gpu);
      const ref = want.get(c.name);
      if (ref === undefined) throw new Error(`no reference for ${c.name}`);
      unconsumed += got.unconsumed;
      cases.push({
        name: c.name,
        worst: worstError(got, ref),
        values: ref.outputs.reduce((n, o) => n + o.length, 0),
      });
    }
    results.push({
      request,
      description: gpu.description,
      cases,
      donatedConsumed: unconsumed === 0,
    });
  }
  return results;
}

function publish(report: PageReport): void {
  const pre = document.getElementById('report');
  if (pre !== null) pre.textContent = JSON.stringify(report);
  document.documentElement.setAttribute(MARKER, report.status);
}

runAll().then(
  (adapters) => publish({ status: 'done', adapters }),
  (e: unknown) =>
    publish({
      status: 'error',
      message: e instanceof Error ? `${e.name}: ${e.message}` : String(e),
    }),
);
