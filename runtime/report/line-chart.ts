// SVG line charts for training curves (loss or accuracy against epoch or wall time, one line per
// optimizer), written by hand so reports need no plotting dependency. The output is a pure
// function of the options (no clocks, no randomness), so charts can be diffed and snapshot-tested.
import { GrngError } from '../../core/errors.js';

export interface ChartSeries {
  readonly name: string;
  readonly points: readonly (readonly [number, number])[];
}

export interface LineChartOptions {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly series: readonly ChartSeries[];
  /** Default 640. */
  readonly width?: number;
  /** Default 400. */
  readonly height?: number;
  /** Default 'linear'. On 'log', points with y ≤ 0 are left out. */
  readonly yScale?: 'linear' | 'log';
  /** Fixed [min, max] for the y axis (points outside are left out); default: from the data. */
  readonly yRange?: readonly [number, number];
}

type Point = readonly [number, number];
interface Tick {
  readonly at: number;
  readonly label: string;
}
/** `t` maps data to axis units (identity or log10); [t0, t1] is the axis extent in those units. */
interface Scale {
  readonly t: (v: number) => number;
  readonly t0: number;
  readonly t1: number;
  readonly ticks: readonly Tick[];
}

/**
 * Okabe–Ito colours (colour-blind safe), by series index so a series keeps its colour across
 * charts.
 */
const PALETTE = [
  '#0072B2',
  '#E69F00',
  '#009E73',
  '#D55E00',
  '#CC79A7',
  '#56B4E9',
  '#000000',
  '#F0E442',
];
const MAX_TICKS = 8;
/** Markers help on short curves (a few epochs) and clutter long ones. */
const MARKER_LIMIT = 30;
/** Room for tick labels and axis labels; the right margin holds the legend. */
const MARGIN = { left: 64, right: 160, top: 36, bottom: 48 };

/** Two decimals: a pixel hundredth is invisible and keeps files small. */
const num = (v: number): string => String(Math.round(v * 100) / 100);
const ENTITIES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
};
const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => ENTITIES[c]);
const magnitude = (v: number): number => Math.floor(Math.log10(Math.abs(v)));

/**
 * `digits` significant digits in the shortest form: 0.6 not 0.6000000000000001, 1e-5 not 0.00001.
 */
function fmt(v: number, digits: number): string {
  const c = Number(v.toPrecision(Math.min(15, Math.max(1, digits))));
  const a = Math.abs(c);
  return a !== 0 && (a >= 1e6 || a < 1e-4) ? c.toExponential().replace('e+', 'e') : String(c);
}

/**
 * Ticks every 1, 2 or 5 × 10^k: the smallest such step giving ≤ MAX_TICKS ticks. `extend` widens
 * the axis to whole steps.
 */
function linearScale(lo: number, hi: number, extend: boolean): Scale {
  const id = (v: number): number => v;
  const e = Math.floor(Math.log10((hi - lo) / MAX_TICKS));
  for (let j = 0; j < 12 && Number.isFinite(e); j++) {
    const s = [1, 2, 5][j % 3] * 10 ** (e + Math.floor(j / 3));
    // The epsilon keeps 0.6 / 0.2 = 2.9999999999999996 from adding a tick.
    const i0 = extend ? Math.floor(lo / s + 1e-9) : Math.ceil(lo / s - 1e-9);
    const i1 = extend ? Math.ceil(hi / s - 1e-9) : Math.floor(hi / s + 1e-9);
    if (i1 - i0 + 1 > MAX_TICKS) continue;
    if (!Number.isFinite(i0 * s) || !Number.isFinite(i1 * s)) break;
    const ticks = Array.from({ length: i1 - i0 + 1 }, (_, k) => (i0 + k) * s).map((v) => ({
      at: v,
      label: fmt(v, magnitude(v) - magnitude(s) + 1),
    }));
    return extend ? { t: id, t0: i0 * s, t1: i1 * s, ticks } : { t: id, t0: lo, t1: hi, ticks };
  }
  // Only for spans near the float limit: label the ends.
  return { t: id, t0: lo, t1: hi, ticks: [lo, hi].map((v) => ({ at: v, label: fmt(v, 6) })) };
}

/**
 * Ticks at powers of ten (every few decades if many), with 2× and 5× when the axis spans ≤ 2
 * decades.
 */
function logScale(lo: number, hi: number, extend: boolean): Scale {
  let a = Math.log10(lo);
  let b = Math.log10(hi);
  const stride = Math.max(1, Math.ceil((Math.ceil(b) - Math.floor(a)) / (MAX_TICKS - 1)));
  if (extend) {
    a = Math.floor(a + 1e-9);
    b = Math.ceil(b - 1e-9);
    if (a === b) [a, b] = [a - 1, b + 1];
    b = a + stride * Math.ceil((b - a) / stride);
  }
  const ticks: Tick[] = [];
  for (let k = Math.floor(a); k <= Math.ceil(b); k += stride) {
    for (const m of b - a <= 2 ? [1, 2, 5] : [1]) {
      const at = k + Math.log10(m);
      if (at >= a - 1e-9 && at <= b + 1e-9) ticks.push({ at, label: fmt(m * 10 ** k, 1) });
    }
  }
  // A fixed range inside one decade may hold no such tick: fall back to 1-2-5 steps placed on the
  // log axis.
  const fallback =
    ticks.length < 2
      ? linearScale(lo, hi, false).ticks.map((tk) => ({ ...tk, at: Math.log10(tk.at) }))
      : ticks;
  return { t: Math.log10, t0: a, t1: b, ticks: fallback };
}

/**
 * [min, max] without spreading (curves can have many thousands of points); `empty` when there are
 * none.
 */
function extent(values: readonly number[], empty: Point): Point {
  if (values.length === 0) return empty;
  let [lo, hi] = [Infinity, -Infinity];
  for (const v of values) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
  return [lo, hi];
}

/**
 * An all-equal linear range is widened by 10% (or by 1 around zero) so a flat line still gets an
 * axis around it.
 */
const padded = ([lo, hi]: Point): Point =>
  lo < hi ? [lo, hi] : [lo - (Math.abs(lo) * 0.1 || 1), hi + (Math.abs(hi) * 0.1 || 1)];

/** Maximal runs of drawable points: a point that cannot be drawn breaks the line there. */
function runs(points: readonly Point[], drawable: (p: Point) => boolean): Point[][] {
  const out: Point[][] = [];
  let run: Point[] = [];
  for (const p of points) {
    if (drawable(p)) run.push(p);
    else if (run.length > 0) {
      out.push(run);
      run = [];
    }
  }
  if (run.length > 0) out.push(run);
  return out;
}

export function lineChart(options: LineChartOptions): string {
  const {
    title,
    xLabel,
    yLabel,
    series,
    width = 640,
    height = 400,
    yScale = 'linear',
    yRange,
  } = options;
  const op = 'lineChart';
  if (series.length === 0)
    throw new GrngError(op, 'expected at least one series, got none; pass one series per curve');
  for (const [name, v] of [
    ['width', width],
    ['height', height],
  ] as const) {
    if (!(Number.isFinite(v) && v > 0))
      throw new GrngError(op, `${name} must be a positive finite number of pixels, got ${v}`);
  }
  if (yScale !== 'linear' && yScale !== 'log')
    throw new GrngError(op, `yScale must be 'linear' or 'log', got ${String(yScale)}`);
  const log = yScale === 'log';
  if (yRange !== undefined) {
    const [lo, hi] = yRange;
    if (!(Number.isFinite(lo) && Number.isFinite(hi) && lo < hi))
      throw new GrngError(
        op,
        `yRange must be [min, max] with finite min < max, got [${lo}, ${hi}]`,
      );
    if (log && lo <= 0)
      throw new GrngError(
        op,
        `a log-scale yRange needs min > 0, got [${lo}, ${hi}]; use a positive min such as 1e-3`,
      );
  }

  const drawable = ([x, y]: Point): boolean =>
    Number.isFinite(x) &&
    Number.isFinite(y) &&
    (!log || y > 0) &&
    (yRange === undefined || (y >= yRange[0] && y <= yRange[1]));
  const kept = series.flatMap((s) => s.points.filter(drawable));
  const xs = linearScale(
    ...padded(
      extent(
        kept.map((p) => p[0]),
        [0, 1],
      ),
    ),
    true,
  );
  const ys =
    yRange !== undefined
      ? log
        ? logScale(yRange[0], yRange[1], false)
        : linearScale(yRange[0], yRange[1], false)
      : log
        ? logScale(
            ...extent(
              kept.map((p) => p[1]),
              [1, 10],
            ),
            true,
          )
        : linearScale(
            ...padded(
              extent(
                kept.map((p) => p[1]),
                [0, 1],
              ),
            ),
            true,
          );

  const plot = {
    x: MARGIN.left,
    y: MARGIN.top,
    w: Math.max(1, width - MARGIN.left - MARGIN.right),
    h: Math.max(1, height - MARGIN.top - MARGIN.bottom),
  };
  const fx = (t: number): number => plot.x + ((t - xs.t0) / (xs.t1 - xs.t0)) * plot.w;
  const fy = (t: number): number => plot.y + plot.h - ((t - ys.t0) / (ys.t1 - ys.t0)) * plot.h;
  const xy = ([x, y]: Point): string => `${num(fx(x))},${num(fy(ys.t(y)))}`;
  const [bottom, right] = [plot.y + plot.h, plot.x + plot.w];

  const out: string[] = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" width="${num(width)}" ` +
      `height="${num(height)}" viewBox="0 0 ${num(width)} ${num(height)}" ` +
      `font-family="sans-serif" font-size="11">`,
    `<title>${esc(title)}</title>`,
    `<rect width="${num(width)}" height="${num(height)}" fill="#ffffff"/>`,
    `<text class="title" x="${num(width / 2)}" y="22" text-anchor="middle" ` +
      `font-size="14">${esc(title)}</text>`,
    '<g class="grid" stroke="#e6e6e6">',
    ...xs.ticks.map(
      (tk) =>
        `<line x1="${num(fx(tk.at))}" y1="${num(plot.y)}" ` +
        `x2="${num(fx(tk.at))}" y2="${num(bottom)}"/>`,
    ),
    ...ys.ticks.map(
      (tk) =>
        `<line x1="${num(plot.x)}" y1="${num(fy(tk.at))}" x2="${num(right)}" ` +
        `y2="${num(fy(tk.at))}"/>`,
    ),
    '</g>',
    `<rect class="plot-area" x="${num(plot.x)}" y="${num(plot.y)}" ` +
      `width="${num(plot.w)}" height="${num(plot.h)}" fill="none" ` +
      `stroke="#333333"/>`,
    ...xs.ticks.map(
      (tk) =>
        `<text class="x-tick" x="${num(fx(tk.at))}" y="${num(bottom + 16)}" ` +
        `text-anchor="middle">${esc(tk.label)}</text>`,
    ),
    ...ys.ticks.map(
      (tk) =>
        `<text class="y-tick" x="${num(plot.x - 6)}" y="${num(fy(tk.at))}" ` +
        `text-anchor="end" dominant-baseline="middle">${esc(tk.label)}</text>`,
    ),
    `<text class="x-label" x="${num(plot.x + plot.w / 2)}" ` +
      `y="${num(bottom + 38)}" text-anchor="middle">${esc(xLabel)}</text>`,
    `<text class="y-label" x="16" y="${num(plot.y + plot.h / 2)}" ` +
      `text-anchor="middle" transform="rotate(-90 16 ` +
      `${num(plot.y + plot.h / 2)})">${esc(yLabel)}</text>`,
  ];
  series.forEach((s, i) => {
    const colour = PALETTE[i % PALETTE.length];
    // Past the palette, colours repeat: a dash pattern keeps those series apart.
    const dash = i >= PALETTE.length ? ' stroke-dasharray="6 3"' : '';
    const parts = runs(s.points, drawable);
    // A lone point between gaps gets a marker even on long curves, or it would not show at all.
    const marked = parts.flatMap((r) =>
      s.points.length <= MARKER_LIMIT || r.length === 1 ? r : [],
    );
    out.push(
      `<g class="series" fill="none" stroke="${colour}" stroke-width="1.5"${dash}>`,
      ...parts.map((r) => `<polyline points="${r.map(xy).join(' ')}"/>`),
      ...marked.map((p) => {
        const [cx, cy] = xy(p).split(',');
        return `<circle cx="${cx}" cy="${cy}" r="2.5" fill="${colour}" stroke="none"/>`;
      }),
      '</g>',
    );
    const [lx, ly] = [right + 16, plot.y + 8 + i * 18];
    out.push(
      `<g class="legend-entry"><line x1="${num(lx)}" y1="${num(ly)}" ` +
        `x2="${num(lx + 20)}" y2="${num(ly)}" stroke="${colour}" ` +
        `stroke-width="2"${dash}/>`,
      `<text x="${num(lx + 26)}" y="${num(ly)}" ` +
        `dominant-baseline="middle">${esc(s.name)}${parts.length === 0 ? ' (no data)' : ''}</text></g>`,
    );
  });
  out.push('</svg>', '');
  return out.join('\n');
}
