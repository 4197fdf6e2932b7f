// An array longer than the device's maxStorageBufferBindingSize (but within maxBufferSize) lives
// in a buffer a kernel binds as several windows: window j covers elements [j·W, (j+1)·W) of the
// buffer, W being the window length (memory/buffer-split.ts). The kernel reads and writes such an
// array through helpers that pick the window: `bN_load(i)` / `bN_store(i, x)` by element,
// `bN_load4(v)` / `bN_store4(v, x)` by vec4 of a vec4 binding. Other arrays are indexed directly,
// so kernels without a windowed array are unchanged.

/** The expression reading element (unit 1) or vec4 (unit 4) `index` (u32) of windowed `name`. */
export const windowedLoad = (name: string, index: string, unit: 1 | 4 = 1): string =>
  `${name}_load${unit === 4 ? '4' : ''}(${index})`;

/** The statement storing `value` at element or vec4 `index` (u32) of windowed `name`. */
export const windowedStore = (name: string, index: string, value: string, unit: 1 | 4 = 1) =>
  `${name}_store${unit === 4 ? '4' : ''}(${index}, ${value});`;

/** Whether `code` reads or writes windowed `name` through its helpers. */
export const usesWindowed = (code: string, name: string): boolean =>
  new RegExp(`\\b${name}_(load|store)4?\\(`).test(code);

/** The windows of a buffer holding `length` elements, `windowElements` per window. */
export const windowCount = (length: number, windowElements: number): number =>
  Math.max(1, Math.ceil(length / windowElements));

/** How one windowed array of a kernel is bound. */
export interface WindowedBinding {
  readonly name: string;
  /** Binding number of window 0; window j is binding `first + j`. */
  readonly first: number;
  readonly windows: number;
  /** Elements per window (a multiple of 4: windows start on vec4s). */
  readonly windowElements: number;
  /** The element type: 'f32' or 'i32'. */
  readonly storage: string;
  /** Bound as an array of vec4s. */
  readonly vec4: boolean;
  readonly writable: boolean;
}

/** The binding declarations of the array's windows and the helpers that read and write it. */
export function windowedDeclarations(b: WindowedBinding): string[] {
  const { name, windows, storage: t } = b;
  const window = (j: number) => `${name}_w${j}`;
  const decls = Array.from(
    { length: windows },
    (_, j) =>
      `@group(0) @binding(${b.first + j}) var<storage, ${b.writable ? 'read_write' : 'read'}> ` +
      `${window(j)}: array<${b.vec4 ? `vec4<${t}>` : t}>;`,
  );
  // The window of index `i` counted in units of `per` (elements or vec4s), and the index in it.
  const pick = (per: number, body: (w: string) => string) => [
    `  let w = i / ${per}u;`,
    `  let j = i - w * ${per}u;`,
    ...Array.from({ length: windows - 1 }, (_, k) => `  if (w == ${k}u) { ${body(window(k))} }`),
    `  ${body(window(windows - 1))}`,
  ];
  const fn = (signature: string, per: number, body: (w: string) => string) =>
    [`fn ${name}_${signature} {`, ...pick(per, body), '}'].join('\n');
  const element = (w: string) => (b.vec4 ? `${w}[j >> 2u][j & 3u]` : `${w}[j]`);
  const helpers = [
    fn(`load(i: u32) -> ${t}`, b.windowElements, (w) => `return ${element(w)};`),
    ...(b.writable
      ? [fn(`store(i: u32, x: ${t})`, b.windowElements, (w) => `${element(w)} = x; return;`)]
      : []),
    ...(b.vec4
      ? [
          fn(`load4(i: u32) -> vec4<${t}>`, b.windowElements / 4, (w) => `return ${w}[j];`),
          ...(b.writable
            ? [
                fn(
                  `store4(i: u32, x: vec4<${t}>)`,
                  b.windowElements / 4,
                  (w) => `${w}[j] = x; return;`,
                ),
              ]
            : []),
        ]
      : []),
  ];
  return [...decls, ...helpers];
}
