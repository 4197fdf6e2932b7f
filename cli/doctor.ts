// `grng doctor`: which WebGPU adapter grng gets here, with the limits its kernels live within.
// The formatting is separate from opening adapters so tests can check it without a GPU.
import { parseArgs } from 'node:util';
import type { DawnPath } from '../runtime/gpu/dawn-adapters.js';
import { openGpu, type GpuContext } from '../runtime/gpu/open-gpu.js';

/** The limits that bound grng's generated kernels, in the order people look for them. */
export const KEY_LIMITS = [
  'maxStorageBuffersPerShaderStage',
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxUniformBufferBindingSize',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupsPerDimension',
  'maxComputeWorkgroupStorageSize',
  'maxBindGroups',
  'minStorageBufferOffsetAlignment',
] as const;

/** The parts of a context the report shows (a plain object in tests). */
export type DoctorInfo = Pick<
  GpuContext,
  'adapterName' | 'backend' | 'path' | 'featureLevel' | 'features'
> & {
  readonly limits: Readonly<Record<(typeof KEY_LIMITS)[number], number>>;
};

function bytes(n: number): string {
  for (const [unit, size] of [
    ['GiB', 2 ** 30],
    ['MiB', 2 ** 20],
    ['KiB', 2 ** 10],
  ] as const) {
    if (n >= size && n % size === 0) return `${n} (${n / size} ${unit})`;
  }
  return String(n);
}

export function formatAdapter(info: DoctorInfo): string {
  const lines = [
    `adapter:       ${info.adapterName}`,
    `backend:       ${info.backend} (path: ${info.path})`,
    `feature level: ${info.featureLevel}`,
    `features:      ${info.features.length > 0 ? info.features.join(', ') : '(none)'}`,
    'limits:',
  ];
  const width = Math.max(...KEY_LIMITS.map((k) => k.length));
  for (const name of KEY_LIMITS) {
    const value = info.limits[name];
    lines.push(`  ${name.padEnd(width)}  ${/Size$/.test(name) ? bytes(value) : String(value)}`);
  }
  const binding = Math.min(info.limits.maxStorageBufferBindingSize, info.limits.maxBufferSize);
  lines.push(
    `largest array: ${bytes(info.limits.maxBufferSize)} bytes (one past a binding, ` +
      `${bytes(binding)} bytes, is bound as several windows; programs and packed arrays larger than ` +
      `a binding are spread over several buffers)`,
  );
  return `${lines.join('\n')}\n`;
}

export function formatFailure(path: string, message: string): string {
  return `${path}: no adapter\n${message
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n')}\n`;
}

const ALL_PATHS: readonly DawnPath[] = ['native', 'opengles', 'swiftshader'];

export const DOCTOR_USAGE = `Usage: grng doctor [--all]

Shows the WebGPU adapter grng uses here, with the limits its kernels live within.

Options:
  --all              try every path (native, opengles, swiftshader), not just the default
  -h, --help         show this help
`;

/** Runs the command; returns the exit code (0 when at least one adapter opened). */
export async function doctor(
  argv: readonly string[],
  out: (text: string) => void,
): Promise<number> {
  // Strict: an unknown option is refused (before any adapter opens), not ignored.
  const { values } = parseArgs({
    args: [...argv],
    options: {
      all: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    out(DOCTOR_USAGE);
    return 0;
  }
  const all = values.all;
  let found = 0;
  for (const backend of all ? ALL_PATHS : (['auto'] as const)) {
    try {
      const gpu = await openGpu({ backend });
      if (all) out(`== ${backend}\n`);
      out(formatAdapter(gpu));
      gpu.destroy();
      found += 1;
    } catch (e) {
      out(
        formatFailure(
          all ? `== ${backend}` : 'grng doctor',
          e instanceof Error ? e.message : String(e),
        ),
      );
    }
  }
  return found > 0 ? 0 : 1;
}
