import { describe, expect, it } from 'vitest';
import { ropeTable } from '../src/model/rope-table.ts';
import { grid1d } from '../src/gpu/kernels.ts';
import { ropeBackward, ropeForward, type RopeShape } from '../src/reference/rope.ts';
import { randomNormal } from '../src/util/random.ts';
import { TOL } from './tolerances.ts';
import { expectClose } from './util/compare.ts';
import { dot, finiteDiffGrad } from './util/finite-diff.ts';
import { bufferFrom, gpu, readF32, runOnce } from './util/gpu.ts';

const THETA = 10000;
const WG = 64; // the kernels' default workgroup size

interface Layout extends RopeShape {
  /** Rows per sequence in the buffer (T for Q; Tmax for a K cache). */
  seqStride: number;
  /** First row within each sequence (0 for Q; pos0 for a K cache). */
  rowOffset: number;
}

// Odd head dims (half = 5) and a prefill; a decode step and a chunk written into a K cache
// (rows before and after must stay untouched); one aligned size spanning many workgroups.
const CASES: [string, Layout][] = [
  ['Q, hd=10, pos0=5', { B: 3, T: 7, nHeads: 6, hd: 10, pos0: 5, seqStride: 7, rowOffset: 0 }],
  ['Q prefill, hd=16', { B: 2, T: 13, nHeads: 6, hd: 16, pos0: 0, seqStride: 13, rowOffset: 0 }],
  ['K cache decode, hd=16, pos0=5', { B: 3, T: 1, nHeads: 6, hd: 16, pos0: 5, seqStride: 12, rowOffset: 5 }],
  ['K cache chunk, hd=10, pos0=5', { B: 2, T: 4, nHeads: 6, hd: 10, pos0: 5, seqStride: 11, rowOffset: 5 }],
  ['aligned, hd=64', { B: 2, T: 64, nHeads: 4, hd: 64, pos0: 0, seqStride: 64, rowOffset: 0 }],
];

/** The dense [B, T, nHeads*hd] rows of layout `l` inside a buffer of B * seqStride rows. */
function gather(buf: ArrayLike<number>, l: Layout): Float64Array {
  const width = l.nHeads * l.hd;
  const out = new Float64Array(l.B * l.T * width);
  for (let b = 0; b < l.B; b++) {
    for (let t = 0; t < l.T; t++) {
      const src = (b * l.seqStride + l.rowOffset + t) * width;
      for (let k = 0; k < width; k++) out[(b * l.T + t) * width + k] = buf[src + k];
    }
  }
  return out;
}

/** `buf` with the rows of layout `l` replaced by the dense rows `rows`. */
function scatter(buf: ArrayLike<number>, rows: ArrayLike<number>, l: Layout): Float64Array {
  const width = l.nHeads * l.hd;
  const out = Float64Array.from(buf);
  for (let b = 0; b < l.B; b++) {
    for (let t = 0; t < l.T; t++) {
      const dst = (b * l.seqStride + l.rowOffset + t) * width;
      for (let k = 0; k < width; k++) out[dst + k] = rows[(b * l.T + t) * width + k];
    }
  }
  return out;
}

async function runRope(kernel: 'rope_fwd.wgsl' | 'rope_bwd.wgsl', data: Float32Array, l: Layout): Promise<Float32Array> {
  const g = gpu!;
  const table = ropeTable(l.pos0 + l.T, l.hd, THETA);
  const buf = bufferFrom(g, data);
  await runOnce(g, kernel, {
    params: ['uuuuuuu', [l.B, l.T, l.seqStride, l.rowOffset, l.pos0, l.nHeads, l.hd]],
    bindings: [buf, bufferFrom(g, table.cos), bufferFrom(g, table.sin)],
    grid: grid1d(Math.ceil((l.B * l.T * l.nHeads * l.hd) / 2 / WG)),
  });
  return readF32(g, buf, data.length);
}

describe('ropeTable', () => {
  // Each case: |table - f64 math| <= atol + rtol·angle (not ·|value|): the error is the f32 angle's,
  // which grows with the angle (see TOL.ropeTable).
  for (const [maxPos, hd, theta] of [[2048, 64, 10000], [64, 10, 10000], [300, 16, 500000]]) {
    it(`matches float64 cos/sin within the f32 angle error (maxPos=${maxPos} hd=${hd} theta=${theta})`, () => {
      const { cos, sin, half } = ropeTable(maxPos, hd, theta);
      const tol = TOL.ropeTable;
      let worst = 0;
      let worstAt = '';
      for (let p = 0; p < maxPos; p++) {
        for (let i = 0; i < half; i++) {
          const angle = p / theta ** ((2 * i) / hd);
          const err = Math.max(Math.abs(cos[p * half + i] - Math.cos(angle)), Math.abs(sin[p * half + i] - Math.sin(angle)));
          const ratio = err / (tol.atol + tol.rtol * angle);
          if (ratio > worst) {
            worst = ratio;
            worstAt = `p=${p} i=${i} angle=${angle} err=${err.toExponential(3)}`;
          }
        }
      }
      expect(worst, `worst error / tolerance at ${worstAt}`).toBeLessThanOrEqual(1);
      expect(worst, 'the f32 table cannot equal f64 math exactly').toBeGreaterThan(0);
    });
  }

  it('has cos 1, sin 0 at position 0 and frequency 1 in column 0', () => {
    const { cos, sin, half } = ropeTable(8, 16, THETA);
    for (let i = 0; i < half; i++) expect([cos[i], sin[i]]).toEqual([1, 0]);
    for (let p = 0; p < 8; p++) expect(sin[p * half]).toBe(Math.fround(Math.sin(p)));
  });
});

describe('rope reference', () => {
  it('backward matches float64 finite differences', () => {
    const s: RopeShape = { B: 2, T: 3, nHeads: 2, hd: 6, pos0: 5 };
    const table = ropeTable(s.pos0 + s.T, s.hd, THETA);
    const n = s.B * s.T * s.nHeads * s.hd;
    const x = randomNormal(n, 1);
    const dy = randomNormal(n, 2);
    const dx = ropeBackward(dy, table.cos, table.sin, s);
    const fd = finiteDiffGrad((xx) => dot(dy, ropeForward(xx, table.cos, table.sin, s)), x);
    expectClose(dx, fd, TOL.finiteDiff, 'dx vs finite differences');
  });
});

describe.skipIf(!gpu)('rope_fwd.wgsl / rope_bwd.wgsl', () => {
  for (const [name, l] of CASES) {
    const total = l.B * l.seqStride * l.nHeads * l.hd;
    const seed = l.B * 1000 + l.T * 10 + l.hd;

    it(`forward matches the reference (${name})`, async () => {
      const table = ropeTable(l.pos0 + l.T, l.hd, THETA);
      const buf = randomNormal(total, seed);
      const expected = scatter(buf, ropeForward(gather(buf, l), table.cos, table.sin, l), l);
      expectClose(await runRope('rope_fwd.wgsl', buf, l), expected, TOL.rope, 'rotated buffer');
    });

    it(`backward matches the reference (${name})`, async () => {
      const table = ropeTable(l.pos0 + l.T, l.hd, THETA);
      const buf = randomNormal(total, seed + 1);
      const expected = scatter(buf, ropeBackward(gather(buf, l), table.cos, table.sin, l), l);
      expectClose(await runRope('rope_bwd.wgsl', buf, l), expected, TOL.rope, 'rotated gradient buffer');
    });

    it(`forward then backward returns the input (${name})`, async () => {
      const buf = randomNormal(total, seed + 2);
      const back = await runRope('rope_bwd.wgsl', await runRope('rope_fwd.wgsl', buf, l), l);
      expectClose(back, buf, TOL.ropeRoundTrip, 'bwd(fwd(x))');
    });
  }
});
