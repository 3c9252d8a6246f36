/**
 * The three kernels of continuous batching's independent rows (src/model/rows-forward.ts) vs their
 * references: rope_rows_fwd, kv_scatter_fwd, attention_rows_fwd. Each row is one token of its own
 * sequence: a KV-cache slot and a position, given per row in a `places` buffer of (slot, pos).
 */
import { describe, expect, it } from 'vitest';
import { Op, Recorder, grid1d, type OverrideConstants } from '../src/gpu/kernels.ts';
import type { Gpu } from '../src/gpu/device.ts';
import { ropeTable } from '../src/model/rope-table.ts';
import { ropeRowsForward } from '../src/reference/rope_rows.ts';
import { kvScatterForward } from '../src/reference/kv_scatter.ts';
import { attentionRowsForward, type AttentionRowsDims } from '../src/reference/attention_rows.ts';
import { attentionRowsMaxHeads } from '../src/ops/attention_rows.ts';
import { Rng, randomNormal } from '../src/util/random.ts';
import { TOL } from './tolerances.ts';
import { expectClose } from './util/compare.ts';
import { bufferFrom, gpu, readF32, runOnce } from './util/gpu.ts';

const WG = 64; // the elementwise kernels' default workgroup size (the tests dispatch with it)

/** (slot, pos) pairs as the kernels read them: u32 [R, 2]. */
function placesOf(slot: number[], pos: number[]): Uint32Array {
  const out = new Uint32Array(slot.length * 2);
  slot.forEach((s, r) => {
    out[2 * r] = s;
    out[2 * r + 1] = pos[r];
  });
  return out;
}

/**
 * Seeded rows: R rows in `slots` slots of Tmax positions, distinct (slot, pos) pairs; some rows of
 * one slot at consecutive positions (a prefill chunk), the others single rows (decode).
 */
function randomPlaces(R: number, slots: number, Tmax: number, seed: number): { slot: number[]; pos: number[] } {
  const rng = new Rng(seed);
  const used = new Set<string>();
  const slot: number[] = [];
  const pos: number[] = [];
  const chunk = Math.min(R, 5);
  const s0 = rng.int(slots);
  const p0 = rng.int(Tmax - chunk + 1);
  for (let t = 0; t < chunk; t++) {
    slot.push(s0);
    pos.push(p0 + t);
    used.add(`${s0},${p0 + t}`);
  }
  while (slot.length < R) {
    const s = rng.int(slots);
    const p = rng.int(Tmax);
    if (used.has(`${s},${p}`)) continue;
    used.add(`${s},${p}`);
    slot.push(s);
    pos.push(p);
  }
  return { slot, pos };
}

describe.skipIf(!gpu)('rope_rows_fwd.wgsl', () => {
  // Odd head count and half = 5; one size spanning many 64-thread workgroups with hd = 128.
  for (const [R, nHeads, hd, maxPos] of [[7, 3, 10, 45], [1, 2, 6, 9], [64, 4, 128, 512]] as const) {
    it(`matches the reference at R=${R} nHeads=${nHeads} hd=${hd}`, async () => {
      const g = gpu!;
      const { cos, sin } = ropeTable(maxPos, hd, 10000);
      const rng = new Rng(R * 31 + hd);
      const pos = Array.from({ length: R }, () => rng.int(maxPos));
      pos[0] = maxPos - 1; // the table's last row
      const x = randomNormal(R * nHeads * hd, R + hd, 2);
      const buf = bufferFrom(g, x);
      await runOnce(g, 'rope_rows_fwd.wgsl', {
        constants: { WG },
        params: ['uuu', [R, nHeads, hd]],
        bindings: [buf, bufferFrom(g, cos), bufferFrom(g, sin), bufferFrom(g, placesOf(pos.map(() => 7), pos))],
        grid: grid1d(Math.ceil((R * nHeads * hd) / 2 / WG)),
      });
      expectClose(await readF32(g, buf, x.length), ropeRowsForward(x, cos, sin, pos, nHeads, hd), TOL.rope, 'rotated rows');
    });
  }
});

describe.skipIf(!gpu)('kv_scatter_fwd.wgsl', () => {
  for (const [R, slots, Tmax, W] of [[9, 3, 11, 10], [1, 1, 5, 6], [64, 4, 64, 64]] as const) {
    it(`copies R=${R} rows into ${slots} slots of ${Tmax} rows (W=${W}), exactly, leaving the rest`, async () => {
      const g = gpu!;
      const { slot, pos } = randomPlaces(R, slots, Tmax, R + W);
      const kRows = randomNormal(R * W, 1 + W);
      const vRows = randomNormal(R * W, 2 + W);
      const k0 = randomNormal(slots * Tmax * W, 3 + W);
      const v0 = randomNormal(slots * Tmax * W, 4 + W);
      const [kCache, vCache] = [bufferFrom(g, k0), bufferFrom(g, v0)];
      await runOnce(g, 'kv_scatter_fwd.wgsl', {
        constants: { WG },
        params: ['uuu', [R, Tmax, W]],
        bindings: [bufferFrom(g, kRows), bufferFrom(g, vRows), bufferFrom(g, placesOf(slot, pos)), kCache, vCache],
        grid: grid1d(Math.ceil((R * W) / WG)),
      });
      expectClose(await readF32(g, kCache, k0.length), kvScatterForward(k0, kRows, slot, pos, Tmax, W), TOL.kvScatter, 'k cache');
      expectClose(await readF32(g, vCache, v0.length), kvScatterForward(v0, vRows, slot, pos, Tmax, W), TOL.kvScatter, 'v cache');
    });
  }
});

const nanBuffer = (g: Gpu, n: number) => bufferFrom(g, new Float32Array(n).fill(NaN));

async function gpuAttentionRows(g: Gpu, d: AttentionRowsDims, constants: OverrideConstants, q: Float32Array, k: Float32Array, v: Float32Array, places: Uint32Array): Promise<Float32Array> {
  const R = places.length / 2;
  const o = nanBuffer(g, q.length); // `=`: every element must be written
  const op = await Op.create(g, { kernel: 'attention_rows_fwd.wgsl', constants, params: 'uuuuuf', bindings: [bufferFrom(g, q), bufferFrom(g, k), bufferFrom(g, v), bufferFrom(g, places), o] });
  const rec = new Recorder(g, 'attention_rows_fwd');
  rec.dispatch(op, [R, d.Tmax, d.nH, d.nKV, d.hd, d.scale], R, d.nH / Number(constants.QH ?? 1));
  rec.submit();
  return readF32(g, o, q.length);
}

describe.skipIf(!gpu)('attention_rows_fwd.wgsl', () => {
  // [R, slots, Tmax, nH, nKV, hd]: GQA with odd head dims, MHA, a long cache (301 keys over several
  // key blocks per thread), and an aligned case (hd = 128, 64 rows).
  const CASES: [string, number, number, number, number, number, number][] = [
    ['gqa', 7, 3, 19, 6, 2, 10],
    ['mha', 5, 2, 45, 4, 4, 6],
    ['long', 3, 2, 320, 8, 2, 64],
    ['aligned', 64, 4, 64, 2, 1, 128],
  ];
  // Work splits (QH: the most heads of a kv group a thread may take here): the GPU's decode split
  // (64 threads over the keys of one head), a narrow merge with several rounds and a tail, one
  // thread per (row, head) (no merge partners), lavapipe's split (8 threads over QH heads each),
  // one thread over QH heads, and QH heads merged in several rounds each.
  const variants = (QH: number): OverrideConstants[] => [{ KS: 64 }, { KS: 8, DC: 4 }, { KS: 1 }, { KS: 8, QH }, { KS: 1, QH }, { KS: 4, QH, DC: 4 }];
  for (const [name, R, slots, Tmax, nH, nKV, hd] of CASES) {
    it(`matches the reference (${name}) for every work split`, async () => {
      const g = gpu!;
      const d: AttentionRowsDims = { Tmax, nH, nKV, hd, scale: 1 / Math.sqrt(hd) };
      const { slot, pos } = randomPlaces(R, slots, Tmax, R * 7 + hd);
      pos[R - 1] = Tmax - 1; // one row sees the whole cache
      if (R > 1) pos[R - 2] = 0; // one row sees only key 0
      const w = nKV * hd;
      const q = randomNormal(R * nH * hd, 11 + hd, 1.5);
      const k = randomNormal(slots * Tmax * w, 12 + hd);
      const v = randomNormal(slots * Tmax * w, 13 + hd);
      // Cache rows no row may read hold NaN: a NaN times a zero probability would still poison o.
      const maxPos = new Array<number>(slots).fill(-1);
      slot.forEach((s, r) => (maxPos[s] = Math.max(maxPos[s], pos[r])));
      for (let s = 0; s < slots; s++) {
        k.fill(NaN, (s * Tmax + maxPos[s] + 1) * w, (s + 1) * Tmax * w);
        v.fill(NaN, (s * Tmax + maxPos[s] + 1) * w, (s + 1) * Tmax * w);
      }
      const ref = attentionRowsForward(q, k, v, slot, pos, d);
      const QH = attentionRowsMaxHeads({ nH, nKV, hd });
      expect(QH, 'cases where a thread takes several heads').toBe({ gqa: 3, mha: 1, long: 2, aligned: 1 }[name]);
      for (const constants of variants(QH)) {
        const o = await gpuAttentionRows(g, d, constants, q, k, v, placesOf(slot, pos));
        expectClose(o, ref, TOL.attentionFwd, `o ${name} ${JSON.stringify(constants)}`);
      }
    });
  }

  it('gives a row the same bits whatever the other rows and its place in the batch', async () => {
    const g = gpu!;
    const [slots, Tmax, nH, nKV, hd] = [4, 40, 4, 2, 32];
    const d: AttentionRowsDims = { Tmax, nH, nKV, hd, scale: 1 / Math.sqrt(hd) };
    const q = randomNormal(16 * nH * hd, 21, 1.5);
    const k = randomNormal(slots * Tmax * nKV * hd, 22);
    const v = randomNormal(slots * Tmax * nKV * hd, 23);
    const qw = nH * hd;
    // The same query as row 9 of 16 (other rows: other slots and positions).
    const q16 = q.slice();
    q16.set(q.subarray(0, qw), 9 * qw);
    const { slot, pos } = randomPlaces(16, slots, Tmax, 5);
    slot[9] = 2;
    pos[9] = 29;
    for (let r = 0; r < 16; r++) if (r !== 9 && slot[r] === 2 && pos[r] === 29) pos[r] = 30;
    // Both devices' splits (src/ops/attention_rows.ts).
    const splits: OverrideConstants[] = [{ KS: 64 }, { KS: 8, QH: nH / nKV }];
    for (const split of splits) {
      const alone = await gpuAttentionRows(g, d, split, q.slice(0, qw), k, v, placesOf([2], [29]));
      const among = await gpuAttentionRows(g, d, split, q16, k, v, placesOf(slot, pos));
      expect(among.slice(9 * qw, 10 * qw), JSON.stringify(split)).toEqual(alone);
    }
  });
});
