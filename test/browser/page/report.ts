// What the browser page reports to the Node test (read from #report once the marker is set).

/** One program's comparison: WebGPU in the page vs the f32 interpreter in the same page. */
export interface CaseResult {
  readonly name: string;
  /** max |gpu − ref| / (1 + |ref|) over every output value; null when NaN (JSON has no NaN). */
  readonly worst: number | null;
  readonly values: number;
}

export interface AdapterResult {
  /** The createDevice request: the default one or { featureLevel: 'compatibility' }. */
  readonly request: 'default' | 'compatibility';
  /** createDevice's own description of what it got (adapter, backend, feature level). */
  readonly description: string;
  readonly cases: readonly CaseResult[];
  /** True when every donated input was consumed by its call (updated in place). */
  readonly donatedConsumed: boolean;
}

export type PageReport =
  | { readonly status: 'done'; readonly adapters: readonly AdapterResult[] }
  | { readonly status: 'error'; readonly message: string };

/** Attribute on <html> the page sets last; its value is the report's status. */
export const MARKER = 'data-grng';
