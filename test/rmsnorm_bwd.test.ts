import { describe, it } from 'vitest';
import { grid1d } from '../src/gpu/kernels.ts';
import { rmsnormBackward, rmsnormForward } from '../src/reference/rmsnorm.ts';
import { bf16ArrayToF32, f32ArrayToBf16 } from '../src/util/bf16.ts';
import { randomNormal } from '../src/util/random.ts';
import { TOL } from './tolerances.ts';
import { expectClose } from './util/compare.ts';
import { bufferFrom, emptyBuffer, gpu, readF32, runOnce } from './util/gpu.ts';

const EPS = 1e-5;
const COLS = 64; // rmsnorm_bwd_weight.wgsl's default columns per workgroup
// Odd sizes cross the 64-thread row stride and the weight kernel's 64-column blocks and 4-way row
// split unevenly; [5, 128] is the aligned case; [130, 67] sums many rows into dw.
const SIZES: [number, number][] = [[7, 45], [3, 121], [5, 128], [2, 1000], [130, 67]];

function inputs(rows: number, cols: number, seed: number) {
  const x = randomNormal(rows * cols, seed);
  const w = randomNormal(cols, seed + 1, 0.1).map((v) => 1 + v);
  const dy = randomNormal(rows * cols, seed + 2);
  // The forward saves rstd in f32: the backward kernels read exactly that.
  const rstd = Float32Array.from(rmsnormForward(x, w, rows, cols, EPS).rstd);
  return { x, w, dy, rstd };
}

describe.skipIf(!gpu)('rmsnorm_bwd.wgsl (dx)', () => {
  for (const [rows, cols] of SIZES) {
    for (const accumulate of [false, true]) {
      it(`matches the reference at rows=${rows} cols=${cols} (${accumulate ? '+=' : '='})`, async () => {
        const g = gpu!;
        const { x, w, dy, rstd } = inputs(rows, cols, rows * 1000 + cols);
        const ref = rmsnormBackward(dy, x, w, rows, cols, EPS);
        // Pre-filled with non-zero values: `=` must overwrite them, `+=` must add to them.
        const prior = randomNormal(rows * cols, 7);
        const dx = bufferFrom(g, prior);
        await runOnce(g, 'rmsnorm_bwd.wgsl', {
          constants: { ACCUMULATE: accumulate },
          params: ['uu', [rows, cols]],
          bindings: [bufferFrom(g, dy), bufferFrom(g, x), bufferFrom(g, w), bufferFrom(g, rstd), dx],
          grid: grid1d(rows),
        });
        const expected = accumulate ? ref.dx.map((v, i) => v + prior[i]) : ref.dx;
        expectClose(await readF32(g, dx, rows * cols), expected, TOL.rmsnormBwd, 'dx');
      });
    }
  }

  it('reads a bf16 norm weight (W_BF16) at rows=7 cols=45', async () => {
    const g = gpu!;
    const rows = 7, cols = 45; // odd cols: the last weight sits alone in the low half of a word
    const { x, w, dy } = inputs(rows, cols, 21);
    const wBits = f32ArrayToBf16(w);
    const wBf16 = bf16ArrayToF32(wBits); // the values the kernel sees
    const rstd = Float32Array.from(rmsnormForward(x, wBf16, rows, cols, EPS).rstd);
    const ref = rmsnormBackward(dy, x, wBf16, rows, cols, EPS);
    const dx = bufferFrom(g, randomNormal(rows * cols, 7));
    await runOnce(g, 'rmsnorm_bwd.wgsl', {
      constants: { W_BF16: true },
      params: ['uu', [rows, cols]],
      bindings: [bufferFrom(g, dy), bufferFrom(g, x), bufferFrom(g, wBits), bufferFrom(g, rstd), dx],
      grid: grid1d(rows),
    });
    expectClose(await readF32(g, dx, rows * cols), ref.dx, TOL.rmsnormBwd, 'dx with bf16 weight');
  });
});

describe.skipIf(!gpu)('rmsnorm_bwd_weight.wgsl (dw)', () => {
  for (const [rows, cols] of SIZES) {
    for (const accumulate of [false, true]) {
      it(`matches the reference at rows=${rows} cols=${cols} (${accumulate ? '+=' : '='})`, async () => {
        const g = gpu!;
        const { x, w, dy, rstd } = inputs(rows, cols, rows * 1000 + cols);
        const ref = rmsnormBackward(dy, x, w, rows, cols, EPS);
        const prior = randomNormal(cols, 8);
        const dw = bufferFrom(g, prior);
        await runOnce(g, 'rmsnorm_bwd_weight.wgsl', {
          constants: { ACCUMULATE: accumulate },
          params: ['uu', [rows, cols]],
          bindings: [bufferFrom(g, dy), bufferFrom(g, x), bufferFrom(g, rstd), dw],
          grid: grid1d(Math.ceil(cols / COLS)),
        });
        const expected = accumulate ? ref.dw.map((v, i) => v + prior[i]) : ref.dw;
        expectClose(await readF32(g, dw, cols), expected, TOL.rmsnormBwd, 'dw');
      });
    }
  }

  it('gives the same dw with other block shapes (COLS=16, ROW_SPLIT=8)', async () => {
    const g = gpu!;
    const rows = 37, cols = 45;
    const { x, w, dy, rstd } = inputs(rows, cols, 5);
    const ref = rmsnormBackward(dy, x, w, rows, cols, EPS);
    const dw = emptyBuffer(g, cols * 4);
    await runOnce(g, 'rmsnorm_bwd_weight.wgsl', {
      constants: { COLS: 16, ROW_SPLIT: 8 },
      params: ['uu', [rows, cols]],
      bindings: [bufferFrom(g, dy), bufferFrom(g, x), bufferFrom(g, rstd), dw],
      grid: grid1d(Math.ceil(cols / 16)),
    });
    expectClose(await readF32(g, dw, cols), ref.dw, TOL.rmsnormBwd, 'dw');
  });
});
