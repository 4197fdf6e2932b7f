// grng in a real browser: headless Chromium loads test/browser/page/, which opens WebGPU
// through navigator.gpu at both feature levels, runs a few jitted programs on each and on the
// f32 interpreter, and reports adapters and errors. This test waits for the page's marker.
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { launchChromium } from './chromium.js';
import { MARKER, type AdapterResult, type PageReport } from './page/report.js';
import { servePage, type PageServer } from './serve-page.js';

/**
 * Bounds on max |gpu − ref| / (1 + |ref|), as in test/compiler/webgpu-parity.test.ts: the f32
 * interpreter rounds every op correctly; the adapters' exp/pow/tanh/sqrt/division are within a
 * few f32 ULP of it (llvmpipe) or use WGSL's full allowances (SwiftShader: exp/pow to 3 + 2|x|
 * ULP), and sums run in another order (≤ 65 terms here: 65·2^-24 ≈ 4e-6). The programs chain
 * ≤ 8 ops with O(1) factors (Adam's m̂/√v̂ is ~1 for every g), so errors amplify ≲ 10².
 */
const TOL = 1e-4;
const TOL_SWIFTSHADER = 5e-3;
/**
 * The page compiles ~10 programs on three devices; a cold Vite transform of the sources is most of
 * it.
 */
const MARKER_TIMEOUT_MS = 60_000;

let server: PageServer;
let browser: Browser;

beforeAll(async () => {
  server = await servePage();
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

async function loadReport(): Promise<{ report: PageReport; log: string[] }> {
  const page = await browser.newPage();
  // Kept for failure messages: when a module fails to load, the page only knows which one; the
  // console (and Vite's own output) say why.
  const log: string[] = [];
  page.on('console', (m) => log.push(`console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => log.push(`pageerror: ${e.message}`));
  page.on('requestfailed', (r) =>
    log.push(`requestfailed: ${r.url()} ${r.failure()?.errorText ?? ''}`),
  );
  await page.goto(`${server.origin}/test/browser/page/index.html`);
  try {
    await page.waitForSelector(`html[${MARKER}]`, {
      state: 'attached',
      timeout: MARKER_TIMEOUT_MS,
    });
  } catch (e) {
    throw new Error(
      `the page set no ${MARKER} marker within ${MARKER_TIMEOUT_MS} ms ` +
        `(${String(e)}); page log:\n${log.join('\n')}`,
      { cause: e },
    );
  }
  const text = await page.textContent('#report');
  await page.close();
  return { report: JSON.parse(text ?? '{}') as PageReport, log };
}

function bound(a: AdapterResult): number {
  return /swiftshader/i.test(a.description) ? TOL_SWIFTSHADER : TOL;
}

describe('navigator.gpu in headless Chromium', () => {
  test(
    'both feature levels open a named adapter and match the f32 interpreter',
    { timeout: 90_000 },
    async () => {
      const { report, log } = await loadReport();
      if (report.status === 'error')
        throw new Error(`the page threw: ${report.message}\npage log:\n${log.join('\n')}`);
      expect(report.status).toBe('done');
      for (const a of report.adapters) {
        console.log(`${a.request}: ${a.description}`);
        for (const c of a.cases)
          console.log(
            `  ${c.name}: worst scaled error ` +
              `${c.worst === null ? 'NaN' : c.worst.toExponential(2)} over ` +
              `${c.values} values`,
          );
      }
      const [core, compat] = report.adapters;
      expect(report.adapters.map((a) => a.request)).toEqual(['default', 'compatibility']);
      // createDevice names the adapter, the backend ('browser') and the feature level it got; the
      // default request asks for core first, the other for compatibility only.
      expect(core.description).toMatch(/\(browser, core\)$/);
      expect(compat.description).toMatch(/\(browser, compatibility\)$/);
      // Two different adapters (here SwiftShader and llvmpipe), so both drivers are exercised; one
      // adapter for both would mean the Chromium flags in chromium.ts stopped taking effect.
      const adapterOf = (d: string) => d.replace(/ \(browser, \w+\)$/, '');
      expect(adapterOf(compat.description)).not.toBe(adapterOf(core.description));
      for (const a of report.adapters) {
        expect(a.description).not.toMatch(/^unnamed adapter/);
        expect(a.donatedConsumed).toBe(true);
        for (const c of a.cases) {
          // null is a NaN on the page (see report.ts): fail with the case named.
          expect(c.worst, `${a.request} / ${c.name}`).not.toBeNull();
          expect(c.worst, `${a.request} / ${c.name}`).toBeLessThanOrEqual(bound(a));
        }
      }
    },
  );
});
