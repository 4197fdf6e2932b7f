import { expect } from 'vitest';
import { GrngError } from '../../index.js';

/**
 * The GrngError `run` rejects with (fails the test when it resolves instead, or throws something
 * else).
 */
export async function grngRejection(run: Promise<unknown>): Promise<GrngError> {
  const error = await run.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, 'expected a GrngError').toBeInstanceOf(GrngError);
  return error as GrngError;
}
