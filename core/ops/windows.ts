import { GrngError, fmtShape } from '../errors.js';
import type { Builder } from '../ir/builder.js';
import type { Node } from '../ir/node.js';
import { shapeSize, stridesOf } from '../ir/shape.js';
import type { RuleTable } from './rule.js';
import { expectArity } from './check.js';

// The sliding windows of NHWC images (im2col as a view): out[b, i, j, c, p, q] =
// x[b, i·s_h + p − pad_h, j·s_w + q − pad_w, c], zero where that falls outside the image. Each
// output element is one read, where a concat of k_h·k_w shifted slices reads all k_h·k_w pieces per
// element; convolutions are a matmul over its [B·H_out·W_out, C·k_h·k_w] reshape.

/** The input row (column) an output position and window offset read. */
const source = (at: number, offset: number, stride: number, pad: number) =>
  at * stride + offset - pad;

/** One spatial axis of windows: output size ⌊(n + 2·pad − k)/s⌋ + 1. */
const outSize = (n: number, k: number, s: number, p: number) => Math.floor((n + 2 * p - k) / s) + 1;

/**
 * `piece` [B, H_out, W_out, C] placed where window offset (p, q) read it: rows spread out by the
 * stride (zeros between) and shifted by p − pad_h, cropped or zero-filled to [B, H, W, C].
 */
function placeWindow(b: Builder, piece: Node, node: Node<'windows'>, p: number, q: number): Node {
  const [batch, ho, wo, c] = piece.shape;
  const [h, w] = [node.inputs[0].shape[1], node.inputs[0].shape[2]];
  const [sh, sw] = node.attrs.stride;
  const spread = b.reshape(
    b.pad(
      b.reshape(piece, [batch, ho, 1, wo, 1, c]),
      [0, 0, 0, 0, 0, 0],
      [0, 0, sh - 1, 0, sw - 1, 0],
    ),
    [batch, ho * sh, wo * sw, c],
  );
  // Row r of `spread` is input row r + shift: drop rows before 0, then fit to H rows.
  const fit = (x: Node, axis: 1 | 2, shift: number, size: number): Node => {
    const shape = x.shape;
    let y = x;
    if (shift < 0) {
      const starts = shape.map((_, i) => (i === axis ? -shift : 0));
      y = b.slice(y, starts, [...shape]);
    } else if (shift > 0) {
      y = b.pad(
        y,
        shape.map((_, i) => (i === axis ? shift : 0)),
        shape.map(() => 0),
      );
    }
    const length = y.shape[axis];
    if (length > size)
      return b.slice(
        y,
        y.shape.map(() => 0),
        y.shape.map((d, i) => (i === axis ? size : d)),
      );
    if (length < size)
      return b.pad(
        y,
        y.shape.map(() => 0),
        y.shape.map((_, i) => (i === axis ? size - length : 0)),
      );
    return y;
  };
  const [ph, pw] = node.attrs.padding;
  return fit(fit(spread, 1, p - ph, h), 2, q - pw, w);
}

export const windowsRules: RuleTable<'windows'> = {
  windows: {
    wgsl: {
      kind: 'index',
      operandIndex(index, node) {
        const [b, i, j, c, p, q] = index;
        const [sh, sw] = node.attrs.stride;
        const [ph, pw] = node.attrs.padding;
        const [, h, w] = node.inputs[0].shape;
        const row = `(${i} * ${sh}i + ${p} - ${ph}i)`;
        const col = `(${j} * ${sw}i + ${q} - ${pw}i)`;
        const padded = ph > 0 || pw > 0;
        // An empty image's padding is all there is: its reads are clamped to 0 and never used
        // (WGSL rejects clamp(x, 0i, -1i)).
        return {
          index: [
            b,
            padded ? `clamp(${row}, 0i, ${Math.max(h - 1, 0)}i)` : row,
            padded ? `clamp(${col}, 0i, ${Math.max(w - 1, 0)}i)` : col,
            c,
          ],
          inBounds: padded
            ? `(${row} >= 0i && ${row} < ${h}i && ${col} >= 0i && ${col} < ${w}i)`
            : undefined,
        };
      },
    },
    infer(inputs, attrs) {
      expectArity('windows', inputs, 1);
      const x = inputs[0];
      const { window, stride, padding } = attrs;
      const ints = [...window, ...stride, ...padding];
      if (
        x.shape.length !== 4 ||
        !ints.every(Number.isInteger) ||
        ![...window, ...stride].every((n) => n >= 1) ||
        !padding.every((n) => n >= 0)
      )
        throw new GrngError(
          'windows',
          `needs NHWC images [B, H, W, C] and positive integer window and stride, non-negative ` +
            `padding; got ${fmtShape(x.shape)}, window [${window.join(', ')}], stride ` +
            `[${stride.join(', ')}], padding [${padding.join(', ')}]`,
        );
      const [batch, h, w, c] = x.shape;
      const [ho, wo] = [
        outSize(h, window[0], stride[0], padding[0]),
        outSize(w, window[1], stride[1], padding[1]),
      ];
      if (ho < 1 || wo < 1)
        throw new GrngError(
          'windows',
          `a ${window[0]}×${window[1]} window with padding ${padding[0]}, ${padding[1]} does not ` +
            `fit ${h}×${w} images`,
        );
      return { shape: [batch, ho, wo, c, window[0], window[1]], dtype: x.dtype };
    },
    interpret({ node, inputs: [x] }) {
      const [batch, ho, wo, c, kh, kw] = node.shape;
      const [, h, w] = node.inputs[0].shape;
      const [sh, sw] = node.attrs.stride;
      const [ph, pw] = node.attrs.padding;
      const xs = stridesOf(node.inputs[0].shape);
      const out = new Float64Array(shapeSize(node.shape));
      let at = 0;
      for (let n = 0; n < batch; n++)
        for (let i = 0; i < ho; i++)
          for (let j = 0; j < wo; j++)
            for (let ch = 0; ch < c; ch++)
              for (let p = 0; p < kh; p++)
                for (let q = 0; q < kw; q++, at++) {
                  const [r, s] = [source(i, p, sh, ph), source(j, q, sw, pw)];
                  if (r >= 0 && r < h && s >= 0 && s < w)
                    out[at] = x[n * xs[0] + r * xs[1] + s * xs[2] + ch];
                }
      return out;
    },
    // The transpose (col2im): every window offset's slice of the cotangent added back where it
    // was read, built from reshape, pad and slice so that it differentiates again.
    vjp(b, node, ct) {
      const [batch, ho, wo, c, kh, kw] = node.shape;
      let total: Node | null = null;
      for (let p = 0; p < kh; p++)
        for (let q = 0; q < kw; q++) {
          const piece = b.reshape(
            b.slice(ct, [0, 0, 0, 0, p, q], [batch, ho, wo, c, p + 1, q + 1]),
            [batch, ho, wo, c],
          );
          const placed = placeWindow(b, piece, node, p, q);
          total = total === null ? placed : b.add(total, placed);
        }
      return [total];
    },
    jvp: (b, node, [t]) => (t === null ? null : b.emit('windows', [t], node.attrs)),
  },
};
