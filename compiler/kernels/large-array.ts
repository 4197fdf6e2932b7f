/**
 * Arrays of this many elements (4 MiB of f32) and more are large: beside a pass over one, a
 * dispatch's overhead is small on any adapter, so kernels that would hold several of them at once
 * get dispatches of their own instead (kernels/checked-alone.ts, merge-independent.ts), trading a
 * few dispatches for the memory.
 */
export const LARGE_ARRAY = 2 ** 20;
