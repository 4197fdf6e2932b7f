/**
 * The one error type users see. Messages say what was expected, what was given and what to do;
 * `op` names the operation that refused the input so a user can find it in their code.
 */
export class GrngError extends Error {
  readonly op: string;
  /**
   * What would make the message long but may help: e.g. every argument of a failed trace (the
   * CLI prints it with --verbose).
   */
  readonly details?: string;
  constructor(op: string, message: string, details?: string) {
    super(`${op}: ${message}`);
    this.name = 'GrngError';
    this.op = op;
    if (details !== undefined) this.details = details;
  }
}

/** Formats a shape the way users write it: `[2, 3]`, `[]` for a scalar. */
export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}
