import { describe, expect, it } from 'vitest';
import { buildEmbeddingGradIndex } from '../src/model/embedding-index.ts';
import { grid1d } from '../src/gpu/kernels.ts';
import { embeddingBackward, embeddingForward } from '../src/reference/embedding.ts';
import { bf16ArrayToF32, f32ArrayToBf16 } from '../src/util/bf16.ts';
import { randomNormal, Rng } from '../src/util/random.ts';
import { TOL } from './tolerances.ts';
import { expectClose } from './util/compare.ts';
import { dot, finiteDiffGrad } from './util/finite-diff.ts';
import { bufferFrom, gpu, readF32, runOnce } from './util/gpu.ts';

const WG = 256; // embedding_fwd.wgsl's default workgroup size

interface Case {
  V: number;
  D: number;
  R: number;
  /** Chunk boundaries of the table, [0, ..., V]. */
  bounds: number[];
}

// Odd dims (bf16 rows then start mid-word) and a table split in two or three chunks; one aligned size.
const CASES: Case[] = [
  { V: 67, D: 45, R: 21, bounds: [0, 31, 67] },
  { V: 121, D: 3, R: 7, bounds: [0, 40, 41, 121] },
  { V: 256, D: 64, R: 128, bounds: [0, 256] },
];

/** Token ids with repeats (as in real text), touching the first, last and chunk-boundary rows. */
function tokenIds(c: Case, seed: number): Uint32Array {
  const rng = new Rng(seed);
  const pool = [0, c.V - 1, ...c.bounds.slice(1, -1).flatMap((b) => [b - 1, b])];
  while (pool.length < Math.max(4, c.R / 2)) pool.push(rng.int(c.V));
  const ids = new Uint32Array(c.R);
  for (let r = 0; r < c.R; r++) ids[r] = r < pool.length ? pool[r] : pool[rng.int(pool.length)];
  return new Uint32Array(rng.shuffle([...ids]));
}

function chunks(c: Case): [number, number][] {
  return c.bounds.slice(0, -1).map((start, k) => [start, c.bounds[k + 1] - start]);
}

describe('embedding reference', () => {
  it('backward matches float64 finite differences', () => {
    const V = 9, D = 4;
    const ids = Uint32Array.from([3, 0, 3, 8, 5, 3]);
    const E = randomNormal(V * D, 1);
    const dx = randomNormal(ids.length * D, 2);
    const fd = finiteDiffGrad((ee) => dot(dx, embeddingForward(ee, ids, D)), E);
    expectClose(embeddingBackward(dx, ids, V, D), fd, TOL.finiteDiff, 'dE vs finite differences');
  });
});

describe('buildEmbeddingGradIndex', () => {
  it('groups every row under its token, ids increasing, rows increasing within a token', () => {
    const ids = tokenIds(CASES[0], 4);
    const { uniq, starts, rows } = buildEmbeddingGradIndex(ids);
    expect(starts.length).toBe(uniq.length + 1);
    expect(starts[0]).toBe(0);
    expect(starts[uniq.length]).toBe(ids.length);
    expect([...rows].sort((a, b) => a - b)).toEqual([...ids.keys()]);
    expect(new Set(ids).size).toBe(uniq.length);
    expect(uniq.length).toBeLessThan(ids.length); // the case has repeated tokens
    for (let u = 0; u < uniq.length; u++) {
      if (u > 0) expect(uniq[u]).toBeGreaterThan(uniq[u - 1]);
      for (let k = starts[u]; k < starts[u + 1]; k++) {
        expect(ids[rows[k]]).toBe(uniq[u]);
        if (k > starts[u]) expect(rows[k]).toBeGreaterThan(rows[k - 1]);
      }
    }
  });

  it('handles an empty batch and rejects non-ids', () => {
    const empty = buildEmbeddingGradIndex([]);
    expect([empty.uniq.length, [...empty.starts], empty.rows.length]).toEqual([0, [0], 0]);
    expect(() => buildEmbeddingGradIndex([1, -2])).toThrow(/not a token id/);
  });
});

describe.skipIf(!gpu)('embedding_fwd.wgsl', () => {
  for (const c of CASES) {
    for (const bf16 of [false, true]) {
      it(`matches the reference chunk by chunk at V=${c.V} D=${c.D} R=${c.R}, ${bf16 ? 'bf16' : 'f32'} table`, async () => {
        const g = gpu!;
        const ids = tokenIds(c, c.V + c.R);
        const table = randomNormal(c.V * c.D, c.V);
        const tableBits = f32ArrayToBf16(table);
        const E = bf16 ? bf16ArrayToF32(tableBits) : table; // the values the kernel sees
        const expected = embeddingForward(E, ids, c.D);
        // Sentinel rows: a chunk must leave rows of other chunks untouched.
        const sentinel = randomNormal(c.R * c.D, 5, 100);
        const x = bufferFrom(g, sentinel);
        const idsBuf = bufferFrom(g, ids);
        const seen = new Set<number>();
        for (const [start, count] of chunks(c)) {
          const part = bf16
            ? tableBits.subarray(start * c.D, (start + count) * c.D)
            : table.subarray(start * c.D, (start + count) * c.D);
          await runOnce(g, 'embedding_fwd.wgsl', {
            constants: { W_BF16: bf16 },
            params: ['uuuuu', [c.R, c.D, start, count, 0]],
            bindings: [idsBuf, bufferFrom(g, part), x],
            grid: grid1d(Math.ceil((c.R * c.D) / WG)),
          });
          for (let v = start; v < start + count; v++) seen.add(v);
          const partial = expected.map((v, i) => (seen.has(ids[Math.floor(i / c.D)]) ? v : sentinel[i]));
          expectClose(await readF32(g, x, c.R * c.D), partial, TOL.embeddingFwd, `x after chunk [${start}, ${start + count})`);
        }
      });
    }
  }
});

describe.skipIf(!gpu)('embedding_fwd.wgsl ids_offset', () => {
  it('embeds rows [ids_offset, ids_offset + R) of a longer id list (prefill in passes), whole table and split', async () => {
    const g = gpu!;
    const c = CASES[0];
    const all = tokenIds({ ...c, R: 3 * c.R }, 77);
    const table = randomNormal(c.V * c.D, 78);
    const idsBuf = bufferFrom(g, all);
    for (const offset of [0, 7, 2 * c.R]) {
      const want = embeddingForward(table, all.subarray(offset, offset + c.R), c.D);
      const x = bufferFrom(g, randomNormal(c.R * c.D, 79, 100));
      for (const [start, count] of chunks(c)) {
        await runOnce(g, 'embedding_fwd.wgsl', {
          constants: { W_BF16: false },
          params: ['uuuuu', [c.R, c.D, start, count, offset]],
          bindings: [idsBuf, bufferFrom(g, table.subarray(start * c.D, (start + count) * c.D)), x],
          grid: grid1d(Math.ceil((c.R * c.D) / WG)),
        });
      }
      expectClose(await readF32(g, x, c.R * c.D), want, TOL.embeddingFwd, `x at ids_offset ${offset}`);
    }
  });
});

describe.skipIf(!gpu)('embedding_bwd.wgsl', () => {
  for (const c of CASES) {
    it(`matches the reference chunk by chunk at V=${c.V} D=${c.D} R=${c.R} (+=)`, async () => {
      const g = gpu!;
      const ids = tokenIds(c, c.V + c.R + 1);
      const dx = randomNormal(c.R * c.D, c.R);
      const dE = embeddingBackward(dx, ids, c.V, c.D);
      const index = buildEmbeddingGradIndex(ids);
      const U = index.uniq.length;
      const bindings = [bufferFrom(g, dx), bufferFrom(g, index.uniq), bufferFrom(g, index.starts), bufferFrom(g, index.rows)];
      for (const [start, count] of chunks(c)) {
        // Pre-filled with non-zero values: the kernel must add to them (untouched for unused tokens).
        const prior = randomNormal(count * c.D, start + 3);
        const dEChunk = bufferFrom(g, prior);
        await runOnce(g, 'embedding_bwd.wgsl', {
          params: ['uuuu', [U, c.D, start, count]],
          bindings: [...bindings, dEChunk],
          grid: grid1d(U),
        });
        const expected = prior.map((v, i) => v + dE[start * c.D + i]);
        expectClose(await readF32(g, dEChunk, count * c.D), expected, TOL.embeddingBwd, `dE rows [${start}, ${start + count})`);
      }
    });
  }
});
