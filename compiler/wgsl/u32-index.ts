// WGSL u32 index arithmetic for the matmul kernels, folding zero and unit terms at generation time.

/** `x·s` (zero when either is); `x` is parenthesized unless it is a name or a literal. */
export const scaled = (x: string, s: number): string =>
  s === 0 || x === '0u'
    ? '0u'
    : s === 1
      ? x
      : `${/^[A-Za-z0-9_.]+$/.test(x) ? x : `(${x})`} * ${s}u`;

/** The sum of `terms`, leaving out zero terms. */
export const sum = (...terms: string[]): string =>
  terms.filter((t) => t !== '0u').join(' + ') || '0u';

export const range = (length: number): number[] => Array.from({ length }, (_, i) => i);
