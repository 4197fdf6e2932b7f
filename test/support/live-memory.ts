// Checks a compiled program's memory plan: no two intermediates that are live at the same time
// share memory (regions of one arena, or arenas sharing one GPU buffer).
import { expect } from 'vitest';
import type { Program } from '../../compiler/program.js';

/**
 * Arena nodes by the memory they occupy (a shared buffer counts as one memory), the dispatch
 * that writes each and the last that reads it: two live at once never overlap.
 */
export function expectNoSharedLiveMemory(program: Program): void {
  const { regions, slots } = program.memory;
  const memoryOf = (slot: number) => {
    const s = slots[slot];
    return s.kind === 'arena' && s.buffer !== undefined ? `buffer${s.buffer}` : `slot${slot}`;
  };
  const live = new Map<
    number,
    { memory: string; start: number; end: number; from: number; to: number }
  >();
  program.kernels.forEach((k, at) => {
    for (const s of k.segments) {
      for (const r of s.roots) {
        const region = regions.get(r.id);
        if (region === undefined || slots[region.slot].kind !== 'arena') continue;
        const size = Math.max(4, Math.ceil(r.shape.reduce((x, y) => x * y, 1) / 4) * 4);
        live.set(r.id, {
          memory: memoryOf(region.slot),
          start: region.offset,
          end: region.offset + size,
          from: at,
          to: at,
        });
      }
      for (const n of s.inputs) {
        const l = live.get(n.id);
        if (l !== undefined) l.to = Math.max(l.to, at);
      }
    }
  });
  // Copies after the dispatches read what they copy.
  for (const c of program.memory.copies) {
    for (const l of live.values())
      if (
        memoryOf(c.from.slot) === l.memory &&
        c.from.offset < l.end &&
        l.start < c.from.offset + c.length
      )
        l.to = program.kernels.length;
  }
  const all = [...live.entries()];
  for (const [i, a] of all) {
    for (const [j, b] of all) {
      if (i >= j || a.memory !== b.memory) continue;
      const together = a.from <= b.to && b.from <= a.to;
      const overlap = a.start < b.end && b.start < a.end;
      expect(together && overlap, `#${i} and #${j} share ${a.memory} while both live`).toBe(false);
    }
  }
}
