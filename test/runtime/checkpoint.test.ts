// Checkpoints: a safetensors file (+ JSON sidecar) round-trips trees of every dtype exactly,
// resuming a training step from one continues bit for bit (float64 interpreter and WebGPU), a
// write killed before its rename leaves the previous checkpoint intact, damaged files (truncated
// anywhere, any byte flipped, a header that is not JSON, no checksum) are GrngErrors saying what
// is wrong, and each save keeps the checkpoint it replaces as `.prev`, which refusals name.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  adamw,
  array,
  compileTrainStep,
  createDevice,
  crossEntropy,
  GrngError,
  nn,
  ring,
  type Device,
  type Optimizer,
} from '../../index.js';
import { flattenTree } from '../../core/tree.js';
import { loadCheckpoint, saveCheckpoint } from '../../runtime/checkpoint.js';
import type { DeviceArray } from '../../runtime/device.js';
import { HostArray } from '../../core/host-array.js';
import { isArrayLeaf } from '../../runtime/jit.js';
import { gpuDevice } from '../support/gpu.js';
import { prng, uniform } from '../support/random.js';

const dir = mkdtempSync(join(tmpdir(), 'grng-checkpoint-'));
const cpu = await createDevice({ kind: 'cpu' });

async function leaves(
  tree: unknown,
): Promise<{ data: number[]; shape: readonly number[]; dtype: string }[]> {
  return Promise.all(
    flattenTree('test', tree, isArrayLeaf, 'an array').leaves.map(async (a) => {
      const x = a as DeviceArray | HostArray;
      return {
        data: Array.from(x instanceof HostArray ? x.data : await x.read()),
        shape: x.shape,
        dtype: x.dtype,
      };
    }),
  );
}

function batch(seed: number) {
  const x = uniform(prng(seed), 16 * 4);
  const y = Int32Array.from(
    { length: 16 },
    (_, n) => (x[4 * n] + x[4 * n + 1] > 0 ? 1 : 0) + (x[4 * n + 2] > 0.3 ? 1 : 0),
  );
  return { x: array(x, [16, 4]), y: array(y, [16], 'i32') };
}

describe('saveCheckpoint / loadCheckpoint', () => {
  test(
    'round-trips nested trees of f32, float64, i32 and bool arrays and the ' + 'metadata exactly',
    async () => {
      const path = join(dir, 'roundtrip.safetensors');
      const trees = {
        params: {
          layers: [
            {
              w: array([
                [Math.fround(0.1), -2],
                [3, 4.5],
              ]),
              b: array([Math.PI, -0]),
            },
          ],
          scale: array(7),
        },
        state: {
          counts: array([1, -2, 2147483647], [3], 'i32'),
          flags: array([1, 0, 1], [3], 'bool'),
          nothing: [],
        },
      };
      const meta = {
        step: 12,
        hyper: { lr: 0.01, fisher: 'mc' },
        data: { epoch: 1, position: 384 },
      };
      await saveCheckpoint(path, trees, meta);
      const loaded = loadCheckpoint(path);
      expect(loaded.meta).toEqual(meta);
      expect(await leaves(loaded.trees.params)).toEqual(await leaves(trees.params));
      expect(await leaves(loaded.trees.state)).toEqual(await leaves(trees.state));
      expect(Object.keys(loaded.trees.state as object).sort()).toEqual([
        'counts',
        'flags',
        'nothing',
      ]);
      // π is not a float32: stored as F64, so it comes back exactly (as does −0 in the f32 tensor).
      expect((loaded.trees.params as { layers: { b: HostArray }[] }).layers[0].b.data[0]).toBe(
        Math.PI,
      );
      expect(JSON.parse(readFileSync(`${path}.json`, 'utf8'))).toMatchObject(meta);
    },
  );

  const optimizers: Record<string, () => Optimizer<never, unknown>> = {
    adamw: () => adamw({ lr: 0.02 }) as unknown as Optimizer<never, unknown>,
    ring: () =>
      ring({ lr: 0.05, inverseEvery: 2, newtonIters: 6, powerSteps: 4 }) as unknown as Optimizer<
        never,
        unknown
      >,
  };
  const resumeCase = async (device: Device, name: string) => {
    const model = nn.mlp([4, 8, 3]);
    const start = (extra = {}) =>
      compileTrainStep({
        model,
        loss: crossEntropy,
        optimizer: optimizers[name](),
        params: model.init(2),
        device,
        ...extra,
      });
    const whole = await start();
    for (let t = 1; t <= 5; t++) await whole.run(batch(t));
    const first = await start();
    for (let t = 1; t <= 3; t++) await first.run(batch(t));
    const path = join(dir, `${name}-${device.kind}.safetensors`);
    await saveCheckpoint(
      path,
      { params: await first.params(), state: await first.state() },
      { step: first.steps },
    );
    const saved = loadCheckpoint(path);
    const resumed = await start({
      params: saved.trees.params,
      state: saved.trees.state,
      step: saved.meta.step as number,
    });
    for (let t = 4; t <= 5; t++) await resumed.run(batch(t));
    expect(await leaves(await resumed.params())).toEqual(await leaves(await whole.params()));
    expect(await leaves(await resumed.state())).toEqual(await leaves(await whole.state()));
  };

  test.each(Object.keys(optimizers))(
    '%s: resuming from a checkpoint after 3 of 5 steps gives bit-identical ' +
      'parameters and state (float64 interpreter)',
    async (name) => {
      await resumeCase(cpu, name);
    },
  );

  test('adamw on WebGPU: resuming is bit-identical too (f32 values stored as F32)', async () => {
    await resumeCase(await gpuDevice(), 'adamw');
  });

  test('a write killed before its rename leaves the previous checkpoint intact', async () => {
    const path = join(dir, 'killed.safetensors');
    await saveCheckpoint(path, { params: { w: array([1, 2, 3]) } }, { step: 1 });
    // What a write killed mid-way leaves: a partial temporary file beside the checkpoint.
    writeFileSync(`${path}.tmp`, Buffer.from([1, 2, 3, 4, 5]));
    const loaded = loadCheckpoint(path);
    expect(loaded.meta.step).toBe(1);
    expect(Array.from((loaded.trees.params as { w: HostArray }).w.data)).toEqual([1, 2, 3]);
    // A failed save (here: an array already donated) writes nothing at all.
    const consumed = {
      read: () => Promise.reject(new GrngError('read', 'donated')),
      shape: [1],
      dtype: 'f32',
      device: cpu,
      consumed: true,
      dispose() {},
    } as DeviceArray;
    await expect(saveCheckpoint(path, { params: { w: consumed } }, { step: 2 })).rejects.toThrow(
      GrngError,
    );
    expect(loadCheckpoint(path).meta.step).toBe(1);
  });

  test('missing, truncated and foreign files are GrngErrors naming the problem', async () => {
    expect(() => loadCheckpoint(join(dir, 'absent.safetensors'))).toThrow(/cannot read/);
    const path = join(dir, 'truncated.safetensors');
    await saveCheckpoint(path, { params: { w: array(uniform(prng(1), 64)) } });
    const bytes = readFileSync(path);
    writeFileSync(path, bytes.subarray(0, bytes.byteLength - 10));
    expect(() => loadCheckpoint(path)).toThrow(/truncated/);
    writeFileSync(path, bytes.subarray(0, 5));
    expect(() => loadCheckpoint(path)).toThrow(/header length/);
    const foreign = Buffer.alloc(8 + 16);
    foreign.writeBigUInt64LE(16n);
    foreign.write('{"x":1}         ', 8);
    writeFileSync(path, foreign);
    expect(() => loadCheckpoint(path)).toThrow(/no grng metadata/);
  });
});

/** The GrngError loadCheckpoint(path) refuses the file with (fails the test when it loads). */
function refusal(path: string): GrngError {
  try {
    loadCheckpoint(path);
  } catch (error) {
    expect(error).toBeInstanceOf(GrngError);
    return error as GrngError;
  }
  return expect.unreachable(`${path} loaded`);
}

/** Checkpoint file bytes with the header JSON changed by `edit` (length and padding redone). */
function withHeader(
  bytes: Buffer,
  edit: (header: Record<string, Record<string, unknown>>) => void,
) {
  const length = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + length).toString('utf8'));
  edit(header);
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([prefix, Buffer.from(json), bytes.subarray(8 + length)]);
}

describe('damaged checkpoints are refused, never loaded wrong', () => {
  // Every stored type (F32, F64, I32, U8), so flips land in each kind of tensor data.
  const trees = {
    params: { w: array(uniform(prng(3), 12).map(Math.fround), [3, 4]), b: array([Math.PI, -1]) },
    state: { count: array([5, -7], [2], 'i32'), flags: array([1, 0, 1], [3], 'bool') },
  };
  const good = join(dir, 'good.safetensors');
  const damaged = join(dir, 'damaged.safetensors');

  test('a checkpoint truncated at any length is a GrngError naming the file', async () => {
    await saveCheckpoint(good, trees, { step: 3 });
    const bytes = readFileSync(good);
    fc.assert(
      fc.property(fc.nat({ max: bytes.byteLength - 1 }), (length) => {
        writeFileSync(damaged, bytes.subarray(0, length));
        const error = refusal(damaged);
        expect(error.message).toContain(damaged);
        expect(error.message).toMatch(/truncated|not JSON/);
      }),
    );
  });

  test('a byte changed anywhere, header or data, is a GrngError naming the file', async () => {
    await saveCheckpoint(good, trees, { step: 3 });
    const bytes = readFileSync(good);
    const loadFlipped = (position: number, mask: number) => {
      const copy = Buffer.from(bytes);
      copy[position] ^= mask;
      writeFileSync(damaged, copy);
      const error = refusal(damaged);
      expect(error.message).toContain(damaged);
      expect(error.message).toMatch(/corrupt|truncated/);
    };
    fc.assert(
      fc.property(
        fc.nat({ max: bytes.byteLength - 1 }),
        fc.integer({ min: 1, max: 255 }),
        loadFlipped,
      ),
    );
    // And every byte, each with one bit flipped (which bit cycles with the position).
    for (let position = 0; position < bytes.byteLength; position++)
      loadFlipped(position, 1 << (position % 8));
  });

  test('a header that is not JSON is a GrngError saying so', async () => {
    await saveCheckpoint(good, trees, { step: 3 });
    const bytes = Buffer.from(readFileSync(good));
    const headerEnd = 8 + Number(bytes.readBigUInt64LE(0));
    bytes.write('not json', headerEnd - 12, 'latin1');
    writeFileSync(damaged, bytes);
    expect(refusal(damaged).message).toMatch(
      /damaged.safetensors is corrupt: its header is not JSON/,
    );
  });

  test('a grng checkpoint without its checksum (older grng, other tool) is refused', async () => {
    await saveCheckpoint(good, trees, { step: 3 });
    writeFileSync(
      damaged,
      withHeader(readFileSync(good), (header) => delete header.__metadata__.grng_sha256),
    );
    const error = refusal(damaged);
    expect(error.message).toContain(`${damaged} has no grng_sha256 checksum`);
    expect(error.message).toMatch(/older grng or by another tool.*write it again with this grng/);
    // The same header with its checksum is intact: only the checksum was missing.
    writeFileSync(
      damaged,
      withHeader(readFileSync(good), () => {}),
    );
    expect(loadCheckpoint(damaged).meta.step).toBe(3);
  });

  test(
    'each save keeps the checkpoint it replaces as .prev; a refused checkpoint names its ' +
      'intact .prev and step, and a damaged one never replaces a good .prev',
    async () => {
      const path = join(dir, 'history.safetensors');
      const stepOf = (file: string) => loadCheckpoint(file).meta.step;
      await saveCheckpoint(path, trees, { step: 1 });
      expect(existsSync(`${path}.prev`)).toBe(false);
      await saveCheckpoint(path, trees, { step: 2 });
      await saveCheckpoint(path, trees, { step: 3 });
      expect([stepOf(path), stepOf(`${path}.prev`)]).toEqual([3, 2]);

      const bytes = readFileSync(path);
      const flipped = Buffer.from(bytes);
      flipped[bytes.byteLength - 1] ^= 0x10;
      writeFileSync(path, flipped);
      const named = `the previous checkpoint, step 2, is at ${path}.prev: resume from it`;
      expect(refusal(path).message).toContain(named);
      writeFileSync(path, bytes.subarray(0, 100));
      expect(refusal(path).message).toContain(named);

      // Saving over the damaged file keeps the good .prev (step 2), not the damage.
      await saveCheckpoint(path, trees, { step: 4 });
      expect([stepOf(path), stepOf(`${path}.prev`)]).toEqual([4, 2]);

      // With .prev damaged too, the message says what to do instead.
      writeFileSync(path, flipped);
      writeFileSync(`${path}.prev`, flipped.subarray(0, 50));
      const error = refusal(path);
      expect(error.message).not.toContain('.prev');
      expect(error.message).toMatch(/restore it from a good copy, or train again/);
    },
  );
});
