// The SVG line-chart renderer, checked by parsing its output with small regexes written here:
// structure (one root, balanced tags, escaped text), geometry (every plotted point inside the plot
// area, monotone axes, no NaN), line breaking at undrawable points, and tick choice (1-2-5 steps,
// labels without float noise). Property tests use the project's fixed fast-check seed.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GrngError } from '../../core/errors.js';
import {
  lineChart,
  type ChartSeries,
  type LineChartOptions,
} from '../../runtime/report/line-chart.js';

type Pt = [number, number];
const base = { title: 'loss', xLabel: 'epoch', yLabel: 'loss' };
const chart = (series: readonly ChartSeries[], extra: Partial<LineChartOptions> = {}): string =>
  lineChart({ ...base, series, ...extra });
const curve = (n: number, f: (i: number) => number): Pt[] =>
  Array.from({ length: n }, (_, i) => [i, f(i)]);

// ---------------------------------------------------------------------------------------------
// Tiny SVG readers

/** Throws unless every opening tag is closed in order and nothing is left open. */
function checkBalanced(svg: string): void {
  const body = svg.replace(/^<\?xml[^?]*\?>/, '');
  const stack: string[] = [];
  for (const [, close, name, selfClose] of body.matchAll(/<(\/?)([A-Za-z][\w:-]*)[^<>]*?(\/?)>/g)) {
    if (selfClose) continue;
    if (!close) stack.push(name);
    else if (stack.pop() !== name) throw new Error(`</${name}> closes the wrong tag`);
  }
  if (stack.length > 0) throw new Error(`unclosed: ${stack.join(', ')}`);
  // Outside tags, no raw markup characters and no bare ampersands.
  const text = body.replace(/<[^<>]*>/g, '');
  expect(text).not.toMatch(/[<>]|&(?!(amp|lt|gt|quot|apos);)/);
}

const attr = (tag: string, name: string): number =>
  Number(new RegExp(` ${name}="([^"]*)"`).exec(tag)![1]);
const polylines = (svg: string): Pt[][] =>
  [...svg.matchAll(/<polyline points="([^"]*)"/g)].map((m) =>
    m[1].split(' ').map((p) => p.split(',').map(Number) as Pt),
  );
const circles = (svg: string): Pt[] =>
  [...svg.matchAll(/<circle [^>]*>/g)].map((m) => [attr(m[0], 'cx'), attr(m[0], 'cy')]);
const legend = (svg: string): string[] =>
  [...svg.matchAll(/<g class="legend-entry">[\s\S]*?<text[^>]*>([^<]*)<\/text><\/g>/g)].map(
    (m) => m[1],
  );
/**
 * NaN/Infinity/undefined in an attribute or as a whole label (series names may legitimately say
 * "NaN").
 */
const BAD_NUMBER = /="[^"]*(NaN|Infinity|undefined)|>-?(NaN|Infinity|undefined)</;
const ticks = (svg: string, axis: 'x' | 'y'): string[] =>
  [...svg.matchAll(new RegExp(`<text class="${axis}-tick"[^>]*>([^<]*)</text>`, 'g'))].map(
    (m) => m[1],
  );
function plotArea(svg: string): { x0: number; x1: number; y0: number; y1: number } {
  const tag = /<rect class="plot-area"[^>]*>/.exec(svg)![0];
  const [x, y] = [attr(tag, 'x'), attr(tag, 'y')];
  return { x0: x, x1: x + attr(tag, 'width'), y0: y, y1: y + attr(tag, 'height') };
}
function expectInside(svg: string): void {
  const a = plotArea(svg);
  for (const [x, y] of [...polylines(svg).flat(), ...circles(svg)]) {
    expect(Number.isFinite(x) && Number.isFinite(y)).toBe(true);
    expect(x).toBeGreaterThanOrEqual(a.x0 - 0.01);
    expect(x).toBeLessThanOrEqual(a.x1 + 0.01);
    expect(y).toBeGreaterThanOrEqual(a.y0 - 0.01);
    expect(y).toBeLessThanOrEqual(a.y1 + 0.01);
  }
}
/**
 * Ticks are k·step with one step of 1, 2 or 5 × 10^e, and each label is its number's short form.
 */
function expectNiceTicks(labels: readonly string[]): void {
  const values = labels.map(Number);
  expect(values.every(Number.isFinite)).toBe(true);
  for (const l of labels) expect(l).toMatch(/^-?\d+(\.\d{1,7})?(e-?\d+)?$/);
  for (const l of labels) expect(l).not.toMatch(/0000000|9999999/);
  const raw = (values[values.length - 1] - values[0]) / (values.length - 1);
  const scale = 10 ** Math.floor(Math.log10(raw) + 1e-9);
  const mantissa = Math.round(raw / scale);
  expect([1, 2, 5]).toContain(mantissa);
  expect(Math.abs(raw / scale - mantissa)).toBeLessThan(1e-6);
  const step = mantissa * scale;
  for (let i = 1; i < values.length; i++)
    expect(Math.abs(values[i] - values[i - 1] - step)).toBeLessThan(step * 1e-6);
  for (const v of values)
    expect(Math.abs(v / step - Math.round(v / step))).toBeLessThan(
      1e-9 * Math.max(1, Math.abs(v / step)),
    );
}

// ---------------------------------------------------------------------------------------------

describe('lineChart document', () => {
  const three = [
    { name: 'adamw', points: curve(10, (i) => 2 / (i + 1)) },
    { name: 'ring', points: curve(10, (i) => 1.5 / (i + 1)) },
    { name: 'sgd', points: curve(10, (i) => 3 - i / 5) },
  ];

  it('is one <svg> root with xmlns and a viewBox, with balanced tags', () => {
    const svg = chart(three, { width: 500, height: 300 });
    expect(svg.match(/<svg[\s>]/g)).toHaveLength(1);
    expect(svg).toMatch(/<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"[^>]* viewBox="0 0 500 300"/);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    checkBalanced(svg);
  });

  it('draws one polyline per series and lists every series in the legend, in order', () => {
    const svg = chart(three);
    expect(polylines(svg)).toHaveLength(3);
    expect(polylines(svg).map((p) => p.length)).toEqual([10, 10, 10]);
    expect(legend(svg)).toEqual(['adamw', 'ring', 'sgd']);
    expect(circles(svg)).toHaveLength(30); // ≤ 30 points per series: markers
    expect(polylines(chart([{ name: 'long', points: curve(31, (i) => i) }]))[0]).toHaveLength(31);
    expect(circles(chart([{ name: 'long', points: curve(31, (i) => i) }]))).toHaveLength(0);
  });

  it('colours by series index: distinct, matching the legend, and the same across charts', () => {
    const colours = (svg: string): string[] =>
      [...svg.matchAll(/<g class="series"[^>]* stroke="([^"]*)"/g)].map((m) => m[1]);
    const legendColours = (svg: string): string[] =>
      [...svg.matchAll(/<g class="legend-entry"><line [^>]*stroke="([^"]*)"/g)].map((m) => m[1]);
    const a = chart(three);
    const b = chart(
      three.map((s) => ({ ...s, points: curve(5, (i) => 100 * i) })),
      { yScale: 'log', title: 'other' },
    );
    expect(new Set(colours(a)).size).toBe(3);
    expect(legendColours(a)).toEqual(colours(a));
    expect(colours(b)).toEqual(colours(a));
  });

  it('is deterministic', () => {
    expect(chart(three)).toBe(
      chart(three.map((s) => ({ ...s, points: s.points.map((p) => [...p] as Pt) }))),
    );
  });

  it('escapes & < > " \' in series names, title and axis labels', () => {
    const svg = lineChart({
      title: "it's <b>",
      xLabel: 'x & y',
      yLabel: '"q"',
      series: [
        {
          name: 'a<b&"c"',
          points: [
            [0, 1],
            [1, 2],
          ],
        },
      ],
    });
    expect(svg).toContain('a&lt;b&amp;&quot;c&quot;');
    expect(svg).toContain('it&apos;s &lt;b&gt;');
    expect(svg).toContain('x &amp; y');
    expect(svg).not.toContain('a<b');
    expect(legend(svg)).toEqual(['a&lt;b&amp;&quot;c&quot;']);
    checkBalanced(svg);
  });
});

describe('lineChart geometry', () => {
  const finite = fc.double({ min: -1e6, max: 1e6, noNaN: true });
  const anyValue = fc.oneof(
    { weight: 8, arbitrary: finite },
    { weight: 1, arbitrary: fc.constantFrom(NaN, Infinity, -Infinity, 0) },
  );
  const seriesArb = fc.array(
    fc.record({
      name: fc.string({ maxLength: 8 }),
      points: fc.array(fc.tuple(anyValue, anyValue), { maxLength: 40 }),
    }),
    { minLength: 1, maxLength: 4 },
  );

  it(
    'every plotted coordinate lies inside the plot area, with no NaN ' +
      'anywhere (random series, both scales)',
    () => {
      fc.assert(
        fc.property(
          seriesArb,
          fc.constantFrom<'linear' | 'log'>('linear', 'log'),
          fc.integer({ min: 260, max: 1200 }),
          (series, yScale, width) => {
            const svg = chart(series, { yScale, width, height: width * 0.6 });
            expect(svg).not.toMatch(BAD_NUMBER);
            expectInside(svg);
            expect(legend(svg)).toHaveLength(series.length);
            checkBalanced(svg);
          },
        ),
      );
    },
  );

  it('maps x monotonically to pixels (and larger y to smaller pixel y)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(finite, finite), { minLength: 1, maxLength: 40 }), (points) => {
        const [line] = polylines(chart([{ name: 's', points }]));
        expect(line).toHaveLength(points.length);
        for (let i = 0; i < points.length; i++) {
          for (let j = 0; j < points.length; j++) {
            if (points[i][0] < points[j][0]) expect(line[i][0]).toBeLessThanOrEqual(line[j][0]);
            if (points[i][1] < points[j][1]) expect(line[i][1]).toBeGreaterThanOrEqual(line[j][1]);
          }
        }
      }),
    );
  });

  it('a NaN or infinite coordinate breaks the line into separate polylines', () => {
    const broken = chart([
      {
        name: 's',
        points: [
          [0, 1],
          [1, 2],
          [2, NaN],
          [3, 1],
          [4, 2],
        ],
      },
    ]);
    expect(polylines(broken).map((p) => p.length)).toEqual([2, 2]);
    const twoGaps = chart([
      {
        name: 's',
        points: [
          [0, 1],
          [Infinity, 2],
          [2, 3],
          [3, 1],
          [NaN, 0],
          [5, 2],
          [6, -Infinity],
        ],
      },
    ]);
    expect(polylines(twoGaps).map((p) => p.length)).toEqual([1, 2, 1]);
    expect(twoGaps).not.toMatch(BAD_NUMBER);
  });

  it('log scale skips y ≤ 0 (breaking the line) and rejects a yRange reaching 0', () => {
    const svg = chart(
      [
        {
          name: 's',
          points: [
            [0, 1],
            [1, 0],
            [2, 10],
            [3, -5],
            [4, 100],
            [5, 1000],
          ],
        },
      ],
      { yScale: 'log' },
    );
    expect(polylines(svg).map((p) => p.length)).toEqual([1, 1, 2]);
    expect(svg).not.toMatch(BAD_NUMBER);
    expectInside(svg);
    const none = chart(
      [
        {
          name: 'dead',
          points: [
            [0, 0],
            [1, -1],
          ],
        },
        { name: 'ok', points: [[0, 1]] },
      ],
      { yScale: 'log' },
    );
    expect(legend(none)).toEqual(['dead (no data)', 'ok']);
    expect(() =>
      chart([{ name: 's', points: [[0, 1]] }], { yScale: 'log', yRange: [0, 1] }),
    ).toThrow(GrngError);
  });

  it('degenerate ranges still give finite coordinates inside the plot', () => {
    const cases: ChartSeries[][] = [
      [
        {
          name: 'same x',
          points: [
            [3, 1],
            [3, 2],
            [3, 5],
          ],
        },
      ],
      [
        {
          name: 'same y',
          points: [
            [0, 0.5],
            [1, 0.5],
            [2, 0.5],
          ],
        },
      ],
      [
        {
          name: 'zero',
          points: [
            [0, 0],
            [0, 0],
          ],
        },
      ],
      [{ name: 'one point', points: [[7, -2]] }],
      [
        { name: 'empty', points: [] },
        { name: 'all NaN', points: [[NaN, NaN]] },
      ],
    ];
    for (const series of cases) {
      for (const yScale of ['linear', 'log'] as const) {
        const svg = chart(series, { yScale });
        expect(svg).not.toMatch(BAD_NUMBER);
        expectInside(svg);
        expect(ticks(svg, 'x').length).toBeGreaterThanOrEqual(2);
        expect(ticks(svg, 'y').length).toBeGreaterThanOrEqual(2);
      }
    }
    expect(legend(chart(cases[4]))).toEqual(['empty (no data)', 'all NaN (no data)']);
    // Log scale with all-equal y (an exact power of ten) is padded by a decade each side.
    expect(
      ticks(
        chart(
          [
            {
              name: 's',
              points: [
                [0, 1],
                [1, 1],
              ],
            },
          ],
          { yScale: 'log' },
        ),
        'y',
      ),
    ).toEqual(['0.1', '0.2', '0.5', '1', '2', '5', '10']);
  });

  it('a fixed yRange sets the axis and leaves out points outside it', () => {
    const svg = chart(
      [
        {
          name: 'acc',
          points: [
            [0, 0.1],
            [1, 0.5],
            [2, 1.2],
            [3, 0.9],
          ],
        },
      ],
      { yRange: [0, 1] },
    );
    expect(ticks(svg, 'y')).toEqual(['0', '0.2', '0.4', '0.6', '0.8', '1']);
    expect(polylines(svg).map((p) => p.length)).toEqual([2, 1]);
    expectInside(svg);
  });
});

describe('lineChart ticks', () => {
  it('data in [0, 0.87] gives 0, 0.2, …, 1 with no float noise', () => {
    const svg = chart([
      {
        name: 'acc',
        points: [
          [1, 0],
          [2, 0.3],
          [3, 0.6],
          [37, 0.87],
        ],
      },
    ]);
    expect(ticks(svg, 'y')).toEqual(['0', '0.2', '0.4', '0.6', '0.8', '1']);
    expect(ticks(svg, 'x')).toEqual(['0', '10', '20', '30', '40']);
    expect(
      ticks(
        chart([
          {
            name: 's',
            points: [
              [0, 0.1],
              [1, 0.3],
            ],
          },
        ]),
        'y',
      ),
    ).toEqual(['0.1', '0.15', '0.2', '0.25', '0.3']);
  });

  it('log ticks are powers of ten', () => {
    expect(
      ticks(
        chart(
          [
            {
              name: 's',
              points: [
                [0, 3],
                [1, 0.012],
              ],
            },
          ],
          { yScale: 'log' },
        ),
        'y',
      ),
    ).toEqual(['0.01', '0.1', '1', '10']);
    expect(
      ticks(
        chart(
          [
            {
              name: 's',
              points: [
                [0, 1e-7],
                [1, 1e5],
              ],
            },
          ],
          { yScale: 'log' },
        ),
        'y',
      ),
    ).toEqual(['1e-7', '1e-5', '0.001', '0.1', '10', '1000', '100000']);
  });

  it(
    'linear ticks are 1-2-5 steps, 4 to 8 of them, covering the data, ' +
      'labelled without float noise (random ranges)',
    () => {
      fc.assert(
        fc.property(
          fc.double({ min: -1000, max: 1000, noNaN: true }),
          fc.double({ min: 0.01, max: 1000, noNaN: true }),
          (lo, span) => {
            const svg = chart([
              {
                name: 's',
                points: [
                  [lo, lo],
                  [lo + span, lo + span],
                ],
              },
            ]);
            for (const axis of ['x', 'y'] as const) {
              const labels = ticks(svg, axis);
              expect(labels.length).toBeGreaterThanOrEqual(4);
              expect(labels.length).toBeLessThanOrEqual(8);
              expectNiceTicks(labels);
              // Up to a millionth of a step: the axis may round a hair inside the data (an
              // invisible fraction of a pixel).
              const step = Number(labels[1]) - Number(labels[0]);
              expect(Number(labels[0])).toBeLessThanOrEqual(lo + 1e-6 * step);
              expect(Number(labels[labels.length - 1])).toBeGreaterThanOrEqual(
                lo + span - 1e-6 * step,
              );
            }
          },
        ),
      );
    },
  );
});

describe('lineChart errors', () => {
  const one = [{ name: 's', points: [[0, 1]] as Pt[] }];
  it.each([
    ['no series', { series: [] }],
    ['zero width', { series: one, width: 0 }],
    ['negative height', { series: one, height: -5 }],
    ['NaN width', { series: one, width: NaN }],
    ['infinite height', { series: one, height: Infinity }],
    ['reversed yRange', { series: one, yRange: [1, 0] as const }],
    ['empty yRange', { series: one, yRange: [1, 1] as const }],
    ['NaN yRange', { series: one, yRange: [0, NaN] as const }],
    ['log yRange below zero', { series: one, yScale: 'log' as const, yRange: [-1, 1] as const }],
  ])('%s is a GrngError', (_, extra) => {
    expect(() => lineChart({ ...base, ...extra })).toThrow(GrngError);
    expect(() => lineChart({ ...base, ...extra })).toThrow(/^lineChart: /);
  });
});
