// PyTorch CPU reference points: runs torch_bench.py in a python3 child process and reads back its
// one JSON line. Like the other peers, a PyTorch that cannot run is a reason, never a throw.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Timing } from '../timing.js';
import type { EncoderSetup, MlpSetup } from './peers.js';

/** What torch_bench.py times: every workload gets `warmup` untimed then `reps` timed runs. */
export interface TorchSpec {
  readonly threads: number;
  readonly reps: number;
  readonly warmup: number;
  /**
   * torch.optim.AdamW(foreach=True).step() over tensors of these element counts; `name` is the
   * row's workload.
   */
  readonly adamw: readonly { readonly name: string; readonly sizes: readonly number[] }[];
  /** torch.mm of k×k f32 matrices. */
  readonly matmul: readonly { readonly name: string; readonly k: number }[];
  /** Training steps (Linear/ReLU, cross-entropy, Adam). */
  readonly mlp: readonly (MlpSetup & { readonly name: string })[];
  /**
   * Value and parameter gradients of sum(block(x)) for one nn.TransformerEncoderLayer (pre-LN,
   * exact GELU, no dropout).
   */
  readonly encoder?: readonly (EncoderSetup & { readonly name: string })[];
  /** ViT training steps (cross-entropy, AdamW) on flat NHWC image rows. */
  readonly vit?: readonly (VitSetup & { readonly name: string })[];
}

/** A ViT as nn.vit builds it: patch embedding, [CLS] token, pre-LN blocks, LayerNorm, head. */
export interface VitSetup {
  readonly image: readonly [number, number, number];
  readonly patch: number;
  readonly dim: number;
  readonly depth: number;
  readonly heads: number;
  readonly classes: number;
  readonly batch: number;
}

export interface TorchRow {
  readonly workload: string;
  readonly timing: Timing;
}

export type TorchResult =
  | { ok: true; version: string; threads: number; blas: string; rows: TorchRow[] }
  | { ok: false; error: string };

const SCRIPT = fileURLToPath(new URL('./torch_bench.py', import.meta.url));
const NOT_INSTALLED = 'python3-torch is not installed (apt-get install python3-torch)';
/** torch_bench.py's exit status when `import torch` fails. */
const NO_TORCH = 3;

/**
 * A python3 on PATH may be a pyenv or venv one that cannot see Debian's dist-packages, so the
 * system interpreter is tried after it; GRNG_PYTHON overrides both.
 */
function interpreters(): string[] {
  if (process.env.GRNG_PYTHON) return [process.env.GRNG_PYTHON];
  return ['python3', ...(existsSync('/usr/bin/python3') ? ['/usr/bin/python3'] : [])];
}

interface Exit {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly spawnError?: string;
}

function runPython(python: string, spec: TorchSpec): Promise<Exit> {
  return new Promise((resolve) => {
    const child = spawn(python, [SCRIPT, JSON.stringify(spec)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let [stdout, stderr] = ['', ''];
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    // 'error' (e.g. no such executable) may come without 'close'; resolving twice is harmless.
    child.on('error', (error) =>
      resolve({ code: null, stdout, stderr, spawnError: error.message }),
    );
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const isTiming = (r: unknown): r is { workload: string } & Timing => {
  const o = r as Record<string, unknown>;
  return (
    typeof r === 'object' &&
    r !== null &&
    typeof o.workload === 'string' &&
    ['median', 'min', 'max', 'runs'].every((k) => typeof o[k] === 'number')
  );
};

function parse(stdout: string): TorchResult {
  const line = stdout.trim().split('\n').pop() ?? '';
  try {
    const out = JSON.parse(line) as {
      torch?: unknown;
      threads?: unknown;
      blas?: unknown;
      rows?: unknown;
    };
    if (
      typeof out.torch !== 'string' ||
      typeof out.threads !== 'number' ||
      !Array.isArray(out.rows) ||
      !out.rows.every(isTiming)
    ) {
      return { ok: false, error: `unexpected output from torch_bench.py: ${line.slice(0, 200)}` };
    }
    const rows = out.rows.map(({ workload, median, min, max, runs }) => ({
      workload,
      timing: { median, min, max, runs },
    }));
    return {
      ok: true,
      version: out.torch,
      threads: out.threads,
      blas: typeof out.blas === 'string' ? out.blas : 'unknown',
      rows,
    };
  } catch {
    return { ok: false, error: `torch_bench.py printed no JSON: ${line.slice(0, 200)}` };
  }
}

/** Times the spec's workloads in PyTorch on the CPU; never throws. */
export async function torchTimings(spec: TorchSpec): Promise<TorchResult> {
  try {
    let missing: string = NOT_INSTALLED;
    for (const python of interpreters()) {
      const exit = await runPython(python, spec);
      if (exit.spawnError !== undefined) {
        missing = `cannot run ${python}: ${exit.spawnError}`;
        continue;
      }
      if (exit.code === NO_TORCH) {
        missing = NOT_INSTALLED;
        continue;
      }
      if (exit.code !== 0)
        return {
          ok: false,
          error: exit.stderr.trim().split('\n')[0] || `torch_bench.py exited with ${exit.code}`,
        };
      return parse(exit.stdout);
    }
    return { ok: false, error: missing };
  } catch (error) {
    return {
      ok: false,
      error: (error instanceof Error ? error.message : String(error)).split('\n')[0],
    };
  }
}
