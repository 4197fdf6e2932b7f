/**
 * The one error type users see. Messages say what was expected, what was given and what to do;
 * `op` names the operation that refused the input so a user can find it in their code.
 */
export class GrngError extends Error {
  readonly op: string;
  constructor(op: string, message: string) {
    super(`${op}: ${message}`);
    this.name = 'GrngError';
    this.op = op;
  }
}

/** Formats a shape the way users write it: `[2, 3]`, `[]` for a scalar. */
export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}
