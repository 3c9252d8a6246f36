import { describe, expect, it } from 'vitest';
import { attentionBackward, attentionForward, type AttentionDims } from '../src/reference/attention.ts';
import { grid1d, Op, Recorder, type OverrideConstants } from '../src/gpu/kernels.ts';
import type { Gpu } from '../src/gpu/device.ts';
import { randomNormal } from '../src/util/random.ts';
import { TOL } from './tolerances.ts';
import { expectClose } from './util/compare.ts';
import { dot, finiteDiffGrad } from './util/finite-diff.ts';
import { bufferFrom, gpu, readF32 } from './util/gpu.ts';

const dims = (d: Omit<AttentionDims, 'scale'> & { scale?: number }): AttentionDims => ({ scale: 1 / Math.sqrt(d.hd), ...d });

// Odd sizes (T = 7, 45; hd = 10, 6, 16) cross the query blocks of the work splits below and the
// 8-key blocks unevenly; 'aligned' (T = 64, hd = 128) fills the 32- and 64-query blocks exactly.
// 'chunked' is a prefill with pos0 > 0 (rows 0..8 already cached); 'decode' is one query at
// position 37 of a 64-row cache; 'decodeLong' spreads 301 keys over several key blocks per
// thread. A non-default scale (mha45) checks that Params.scale is honoured.
const CASES: Record<string, AttentionDims> = {
  gqa: dims({ B: 2, T: 7, Tmax: 7, pos0: 0, nH: 6, nKV: 2, hd: 10 }),
  mha45: dims({ B: 1, T: 45, Tmax: 45, pos0: 0, nH: 4, nKV: 4, hd: 16, scale: 0.4 }),
  chunked: dims({ B: 2, T: 5, Tmax: 16, pos0: 9, nH: 4, nKV: 1, hd: 6 }),
  aligned: dims({ B: 1, T: 64, Tmax: 64, pos0: 0, nH: 2, nKV: 1, hd: 128 }),
  decode: dims({ B: 2, T: 1, Tmax: 64, pos0: 37, nH: 4, nKV: 2, hd: 6 }),
  decodeLong: dims({ B: 1, T: 1, Tmax: 320, pos0: 300, nH: 8, nKV: 2, hd: 64 }),
};

// Forward work splits: one thread per query (GPU training/prefill), 4 queries per thread (lavapipe
// training/prefill), 3 per thread (blocks that never align with T), queries and keys both split
// with a merge narrower than hd (DC = 4: several merge rounds, with a tail), and the decode split.
const FWD_VARIANTS: OverrideConstants[] = [
  { QB: 64, QR: 1, KS: 1 },
  { QB: 8, QR: 4, KS: 1 },
  { QB: 4, QR: 3, KS: 1 },
  { QB: 2, QR: 2, KS: 8, DC: 4 },
  { QB: 1, QR: 1, KS: 64 },
];

/**
 * Seeded inputs. Cache rows past pos0 + T - 1 hold NaN: the kernels must never read them (a NaN
 * multiplied by a zero probability would still poison the output). q is scaled up so that scores
 * spread over several units and the softmax is far from uniform.
 */
function inputs(d: AttentionDims, seed: number) {
  const q = randomNormal(d.B * d.T * d.nH * d.hd, seed, 1.5);
  const k = randomNormal(d.B * d.Tmax * d.nKV * d.hd, seed + 1);
  const v = randomNormal(d.B * d.Tmax * d.nKV * d.hd, seed + 2);
  const dout = randomNormal(d.B * d.T * d.nH * d.hd, seed + 3);
  const w = d.nKV * d.hd;
  for (let b = 0; b < d.B; b++) {
    for (let s = d.pos0 + d.T; s < d.Tmax; s++) {
      k.fill(NaN, (b * d.Tmax + s) * w, (b * d.Tmax + s + 1) * w);
      v.fill(NaN, (b * d.Tmax + s) * w, (b * d.Tmax + s + 1) * w);
    }
  }
  return { q, k, v, dout };
}

const paramValues = (d: AttentionDims) => [d.B, d.T, d.Tmax, d.pos0, d.nH, d.nKV, d.hd, d.scale];

const nanBuffer = (g: Gpu, n: number) => bufferFrom(g, new Float32Array(n).fill(NaN));

/** One forward dispatch; o and lse are pre-filled with NaN (they are `=`: every element must be written). */
async function gpuForward(g: Gpu, d: AttentionDims, constants: OverrideConstants, q: Float32Array, k: Float32Array, v: Float32Array) {
  const o = nanBuffer(g, q.length);
  const lse = nanBuffer(g, d.B * d.T * d.nH);
  const op = await Op.create(g, {
    kernel: 'attention_fwd.wgsl',
    constants,
    params: 'uuuuuuuf',
    bindings: [bufferFrom(g, q), bufferFrom(g, k), bufferFrom(g, v), o, lse],
  });
  const rec = new Recorder(g, 'attention_fwd');
  rec.dispatch(op, paramValues(d), Math.ceil(d.T / (Number(constants.QB) * Number(constants.QR))), d.nH, d.B);
  rec.submit();
  return { o: await readF32(g, o, q.length), lse: await readF32(g, lse, d.B * d.T * d.nH) };
}

// Backward work splits: one row per thread (GPU), 4 rows per thread (lavapipe), and 3 rows per
// thread in tiny workgroups (blocks that never align with T or Tmax, many workgroups).
interface BwdVariant { dq: { QB: number; QR: number }; dkv: { SB: number; SR: number } }
const BWD_VARIANTS: BwdVariant[] = [
  { dq: { QB: 64, QR: 1 }, dkv: { SB: 64, SR: 1 } },
  { dq: { QB: 8, QR: 4 }, dkv: { SB: 8, SR: 4 } },
  { dq: { QB: 4, QR: 3 }, dkv: { SB: 2, SR: 3 } },
];

/** The three backward passes encoded in one recorder, as the training step will. Outputs are pre-filled with NaN (they are `=`). */
async function gpuBackward(g: Gpu, d: AttentionDims, ins: ReturnType<typeof inputs>, o: Float32Array, lse: Float32Array, bv: BwdVariant) {
  const rows = d.B * d.T;
  const [q, k, v, dout] = [ins.q, ins.k, ins.v, ins.dout].map((a) => bufferFrom(g, a));
  const oBuf = bufferFrom(g, o);
  const lseBuf = bufferFrom(g, lse);
  const dsum = nanBuffer(g, rows * d.nH);
  const dq = nanBuffer(g, ins.q.length);
  const dk = nanBuffer(g, ins.k.length);
  const dv = nanBuffer(g, ins.v.length);
  const prep = await Op.create(g, { kernel: 'attention_bwd_prep.wgsl', params: 'uuu', bindings: [oBuf, dout, dsum] });
  const dqOp = await Op.create(g, {
    kernel: 'attention_bwd_dq.wgsl', constants: bv.dq, params: 'uuuuuuuf', bindings: [q, k, v, dout, lseBuf, dsum, dq],
  });
  const dkvOp = await Op.create(g, {
    kernel: 'attention_bwd_dkv.wgsl', constants: bv.dkv, params: 'uuuuuuuf', bindings: [q, k, v, dout, lseBuf, dsum, dk, dv],
  });
  const rec = new Recorder(g, 'attention_bwd');
  rec.dispatch(prep, [rows, d.nH, d.hd], ...grid1d(Math.ceil((rows * d.nH) / 64)));
  rec.dispatch(dqOp, paramValues(d), Math.ceil(d.T / (bv.dq.QB * bv.dq.QR)), d.nH, d.B);
  rec.dispatch(dkvOp, paramValues(d), Math.ceil(d.Tmax / (bv.dkv.SB * bv.dkv.SR)), d.nKV, d.B);
  rec.submit();
  return {
    dsum: await readF32(g, dsum, rows * d.nH),
    dq: await readF32(g, dq, ins.q.length),
    dk: await readF32(g, dk, ins.k.length),
    dv: await readF32(g, dv, ins.v.length),
  };
}

describe('attention reference', () => {
  it('GQA equals multi-head attention on kv heads repeated nH/nKV times (HF repeat_kv)', () => {
    const d = dims({ B: 2, T: 5, Tmax: 5, pos0: 0, nH: 6, nKV: 2, hd: 4 });
    const { q, k, v } = inputs(d, 5);
    const rep = d.nH / d.nKV;
    const expand = (x: Float32Array) => {
      const out = new Float64Array(d.B * d.Tmax * d.nH * d.hd);
      for (let r = 0; r < d.B * d.Tmax; r++) {
        for (let h = 0; h < d.nH; h++) {
          for (let c = 0; c < d.hd; c++) out[(r * d.nH + h) * d.hd + c] = x[(r * d.nKV + Math.floor(h / rep)) * d.hd + c];
        }
      }
      return out;
    };
    const gqa = attentionForward(q, k, v, d);
    const mha = attentionForward(q, expand(k), expand(v), { ...d, nKV: d.nH });
    expectClose(gqa.o, mha.o, TOL.finiteDiff, 'o');
    expectClose(gqa.lse, mha.lse, TOL.finiteDiff, 'lse');
  });

  for (const [name, d] of Object.entries({
    training: dims({ B: 2, T: 4, Tmax: 4, pos0: 0, nH: 2, nKV: 1, hd: 3, scale: 0.8 }),
    chunked: dims({ B: 1, T: 3, Tmax: 6, pos0: 2, nH: 4, nKV: 2, hd: 3 }),
  })) {
    it(`backward matches float64 finite differences of <dout, o> (${name})`, () => {
      const { q, k, v, dout } = inputs(d, 17);
      // The finite differences need finite values everywhere; unseen cache rows get zero gradient either way.
      const kk = k.map((x) => (Number.isNaN(x) ? 0.5 : x));
      const vv = v.map((x) => (Number.isNaN(x) ? -0.5 : x));
      const { dq, dk, dv } = attentionBackward(dout, q, kk, vv, d);
      const fdQ = finiteDiffGrad((x) => dot(dout, attentionForward(x, kk, vv, d).o), q);
      const fdK = finiteDiffGrad((x) => dot(dout, attentionForward(q, x, vv, d).o), kk);
      const fdV = finiteDiffGrad((x) => dot(dout, attentionForward(q, kk, x, d).o), vv);
      expectClose(dq, fdQ, TOL.finiteDiff, 'dq vs finite differences');
      expectClose(dk, fdK, TOL.finiteDiff, 'dk vs finite differences');
      expectClose(dv, fdV, TOL.finiteDiff, 'dv vs finite differences');
    });
  }
});

describe.skipIf(!gpu)('attention_fwd.wgsl', () => {
  for (const [name, d] of Object.entries(CASES)) {
    it(`matches the reference (${name}) for every work split`, async () => {
      const g = gpu!;
      const ins = inputs(d, 101 + d.T * 7 + d.hd);
      const ref = attentionForward(ins.q, ins.k, ins.v, d);
      for (const constants of FWD_VARIANTS) {
        const out = await gpuForward(g, d, constants, ins.q, ins.k, ins.v);
        const what = `${name} ${JSON.stringify(constants)}`;
        expectClose(out.o, ref.o, TOL.attentionFwd, `o ${what}`);
        expectClose(out.lse, ref.lse, TOL.attentionFwd, `lse ${what}`);
      }
    });
  }

  // A query at position pos0 + t must give the row of a full causal forward over pos0 + T
  // positions whose keys are the cache rows: this is what makes the KV cache (decode, chunked
  // prefill) agree with training.
  for (const name of ['decode', 'chunked'] as const) {
    it(`${name} rows equal the matching rows of a full causal forward from position 0`, async () => {
      const g = gpu!;
      const d = CASES[name];
      const ins = inputs(d, 303);
      const n = d.pos0 + d.T;
      const full = dims({ B: d.B, T: n, Tmax: n, pos0: 0, nH: d.nH, nKV: d.nKV, hd: d.hd, scale: d.scale });
      const w = d.nKV * d.hd;
      const qw = d.nH * d.hd;
      const fq = randomNormal(d.B * n * qw, 304, 1.5);
      const fk = new Float32Array(d.B * n * w);
      const fv = new Float32Array(d.B * n * w);
      for (let b = 0; b < d.B; b++) {
        fq.set(ins.q.subarray(b * d.T * qw, (b + 1) * d.T * qw), (b * n + d.pos0) * qw);
        fk.set(ins.k.subarray(b * d.Tmax * w, (b * d.Tmax + n) * w), b * n * w);
        fv.set(ins.v.subarray(b * d.Tmax * w, (b * d.Tmax + n) * w), b * n * w);
      }
      const ref = attentionForward(fq, fk, fv, full);
      const refO = new Float64Array(ins.q.length);
      const refLse = new Float64Array(d.B * d.T * d.nH);
      for (let b = 0; b < d.B; b++) {
        refO.set(ref.o.subarray((b * n + d.pos0) * qw, (b * n + n) * qw), b * d.T * qw);
        refLse.set(ref.lse.subarray((b * n + d.pos0) * d.nH, (b * n + n) * d.nH), b * d.T * d.nH);
      }
      const constants = name === 'decode' ? { QB: 1, QR: 1, KS: 64 } : { QB: 8, QR: 4, KS: 1 };
      const out = await gpuForward(g, d, constants, ins.q, ins.k, ins.v);
      expectClose(out.o, refO, TOL.attentionFwd, 'o vs full forward');
      expectClose(out.lse, refLse, TOL.attentionFwd, 'lse vs full forward');
    });
  }
});

describe.skipIf(!gpu)('attention_bwd_{prep,dq,dkv}.wgsl', () => {
  for (const name of ['gqa', 'mha45', 'chunked', 'aligned'] as const) {
    it(`matches the reference backward (${name}) for every work split`, async () => {
      const g = gpu!;
      const d = CASES[name];
      const ins = inputs(d, 707 + d.T);
      const fwd = attentionForward(ins.q, ins.k, ins.v, d);
      const ref = attentionBackward(ins.dout, ins.q, ins.k, ins.v, d);
      const refD = new Float64Array(d.B * d.T * d.nH);
      for (let i = 0; i < refD.length; i++) {
        for (let c = 0; c < d.hd; c++) refD[i] += ins.dout[i * d.hd + c] * fwd.o[i * d.hd + c];
      }
      for (const bv of BWD_VARIANTS) {
        // Unseen cache rows: the reference leaves dk = dv = 0 there, the kernel must write those zeros.
        const out = await gpuBackward(g, d, ins, Float32Array.from(fwd.o), Float32Array.from(fwd.lse), bv);
        const what = `${name} ${JSON.stringify(bv)}`;
        expectClose(out.dsum, refD, TOL.attentionBwd, `D = rowsum(dO * O) ${what}`);
        expectClose(out.dq, ref.dq, TOL.attentionBwd, `dq ${what}`);
        expectClose(out.dk, ref.dk, TOL.attentionBwd, `dk ${what}`);
        expectClose(out.dv, ref.dv, TOL.attentionBwd, `dv ${what}`);
      }
    });
  }
});

it('test inputs are non-trivial', () => {
  const { q, k } = inputs(CASES.gqa, 1);
  expect(new Set(q).size).toBe(q.length);
  expect(new Set(k).size).toBe(k.length);
});
