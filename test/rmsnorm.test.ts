import { describe, expect, it } from 'vitest';
import { rmsnormBackward, rmsnormForward } from '../src/reference/rmsnorm.ts';
import { randomNormal } from '../src/util/random.ts';
import { TOL } from './tolerances.ts';
import { expectClose } from './util/compare.ts';
import { dot, finiteDiffGrad } from './util/finite-diff.ts';
import { bufferFrom, emptyBuffer, gpu, readF32, runOnce } from './util/gpu.ts';
import { grid1d } from '../src/gpu/kernels.ts';
import { bf16ArrayToF32, f32ArrayToBf16 } from '../src/util/bf16.ts';

const EPS = 1e-5;
// Odd sizes cross the 64-thread workgroup's stride unevenly; 128 is the aligned case.
const SIZES: [number, number][] = [[7, 45], [3, 121], [5, 128], [2, 1000]];

function inputs(rows: number, cols: number, seed: number) {
  const x = randomNormal(rows * cols, seed);
  const w = randomNormal(cols, seed + 1, 0.1).map((v) => 1 + v);
  const dy = randomNormal(rows * cols, seed + 2);
  return { x, w, dy };
}

describe('rmsnorm reference', () => {
  it('backward matches float64 finite differences (dx and dw)', () => {
    const rows = 3, cols = 7;
    const { x, w, dy } = inputs(rows, cols, 11);
    const { dx, dw } = rmsnormBackward(dy, x, w, rows, cols, EPS);
    const fdX = finiteDiffGrad((xx) => dot(dy, rmsnormForward(xx, w, rows, cols, EPS).y), x);
    const fdW = finiteDiffGrad((ww) => dot(dy, rmsnormForward(x, ww, rows, cols, EPS).y), w);
    expectClose(dx, fdX, TOL.finiteDiff, 'dx vs finite differences');
    expectClose(dw, fdW, TOL.finiteDiff, 'dw vs finite differences');
  });
});

describe.skipIf(!gpu)('rmsnorm_fwd.wgsl', () => {
  for (const [[rows, cols], bf16] of [...SIZES.map((s) => [s, false] as const), [[7, 45], true] as const, [[3, 128], true] as const]) {
    it(`matches the reference at rows=${rows} cols=${cols} ${bf16 ? 'bf16' : 'f32'} weight`, async () => {
      const g = gpu!;
      const { x, w: w32 } = inputs(rows, cols, rows * 1000 + cols);
      // bf16 weights: the reference uses the same rounded weights, so only f32 arithmetic differs.
      const wBits = f32ArrayToBf16(w32);
      const w = bf16 ? bf16ArrayToF32(wBits) : w32;
      const ref = rmsnormForward(x, w, rows, cols, EPS);
      const y = emptyBuffer(g, rows * cols * 4);
      const rstd = emptyBuffer(g, rows * 4);
      await runOnce(g, 'rmsnorm_fwd.wgsl', {
        constants: { W_BF16: bf16 },
        params: ['uuf', [rows, cols, EPS]],
        bindings: [bufferFrom(g, x), bufferFrom(g, bf16 ? wBits : w), y, rstd],
        grid: grid1d(rows),
      });
      expectClose(await readF32(g, y, rows * cols), ref.y, TOL.rmsnormFwd, 'y');
      expectClose(await readF32(g, rstd, rows), ref.rstd, TOL.rmsnormFwd, 'rstd');
    });
  }
});

it('test inputs are non-trivial', () => {
  const { x } = inputs(3, 45, 1);
  expect(new Set(x).size).toBe(x.length);
});
