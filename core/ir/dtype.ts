/** Element types of the IR. f32 is computed in float64 by the reference interpreter. */
export type DType = 'f32' | 'i32' | 'bool';

export const DTYPES: readonly DType[] = ['f32', 'i32', 'bool'];
