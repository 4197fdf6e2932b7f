import { PRELUDE, SCALAR_TWINS, VECTOR_TWINS } from './prelude.js';

/** What a generated kernel module needs from its caller and gives back. */
export interface KernelSource {
  readonly code: string;
  /** Invocations the dispatch must cover (rounded up to whole workgroups by the device). */
  readonly invocations: number;
  readonly workgroupSize: number;
}

/** Binding declarations for the code emitted so far; bindings named in `vec4` hold vec4s. */
export type Declare = (vec4: ReadonlySet<string>) => string[];

/**
 * The kernel module: helpers it calls, bindings, and a main over `invocations` flat ids (`bound`,
 * an i32 expression: their count, read from a uniform by kernels whose sizes are not literals).
 */
export function assemble(
  decls: readonly string[],
  lines: readonly string[],
  invocations: number,
  workgroupSize: number,
  valueType = 'f32',
  bound = `${invocations}i`,
): KernelSource {
  const body = lines.map((l) => `  ${l}`).join('\n');
  const code = `${decls.join('\n')}

@compute @workgroup_size(${workgroupSize})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let flat = i32(gid.x + gid.y * groups.x * ${workgroupSize}u);
  if (flat >= ${bound}) { return; }
${body}
}
`;
  return { code: withHelpers(code, valueType), invocations, workgroupSize };
}

/** A kernel with nothing to do (its plan covers zero elements): the device never dispatches it. */
export function emptyKernel(): KernelSource {
  return { code: '@compute @workgroup_size(1)\nfn main() {}\n', invocations: 0, workgroupSize: 1 };
}

/**
 * `code` preceded by the prelude helpers it calls, directly or through other helpers (WGSL
 * declarations are order-free).
 */
export function withHelpers(code: string, valueType: string): string {
  const used = new Set<string>();
  const helpers = [...PRELUDE, ...SCALAR_TWINS, ...VECTOR_TWINS];
  let text = code;
  for (let grew = true; grew;) {
    grew = false;
    for (const h of helpers) {
      if (!used.has(h.name) && text.includes(`${h.name}(`)) {
        used.add(h.name);
        text += h.code(valueType);
        grew = true;
      }
    }
  }
  return [...helpers.filter((h) => used.has(h.name)).map((h) => h.code(valueType)), code].join(
    '\n',
  );
}
