import { describe, expect, it } from 'vitest';
import { grid1d } from '../src/gpu/kernels.ts';
import { swigluBackward, swigluForward } from '../src/reference/swiglu.ts';
import { randomNormal } from '../src/util/random.ts';
import { TOL } from './tolerances.ts';
import { expectClose } from './util/compare.ts';
import { dot, finiteDiffGrad } from './util/finite-diff.ts';
import { bufferFrom, gpu, readF32, runOnce } from './util/gpu.ts';

const WG = 256; // the kernels' default workgroup size
// [rows, I]: odd sizes leave a partial last workgroup; [4, 256] is aligned; [9, 121] spans several workgroups.
const SIZES: [number, number][] = [[7, 121], [3, 45], [1, 67], [4, 256], [9, 121]];

function inputs(n: number, seed: number) {
  // Scale 2.5 spreads the gate over the sigmoid's curved range and into its tails (|g| up to ~10).
  const g = randomNormal(n, seed, 2.5);
  const u = randomNormal(n, seed + 1);
  const dh = randomNormal(n, seed + 2);
  return { g, u, dh };
}

describe('swiglu reference', () => {
  it('backward matches float64 finite differences (dg and du)', () => {
    const { g, u, dh } = inputs(37, 3);
    const { dg, du } = swigluBackward(dh, g, u);
    expectClose(dg, finiteDiffGrad((gg) => dot(dh, swigluForward(gg, u)), g), TOL.finiteDiff, 'dg vs finite differences');
    expectClose(du, finiteDiffGrad((uu) => dot(dh, swigluForward(g, uu)), u), TOL.finiteDiff, 'du vs finite differences');
  });
});

describe.skipIf(!gpu)('swiglu_fwd.wgsl / swiglu_bwd.wgsl', () => {
  for (const [rows, I] of SIZES) {
    const n = rows * I;

    // Elements per thread: the GPU's 1, lavapipe's 8 (src/ops/swiglu.ts), and 3 (a tail inside a thread's run).
    for (const EPT of [1, 8, 3]) {
      it(`forward matches the reference at rows=${rows} I=${I} with ${EPT} elements a thread`, async () => {
        const gp = gpu!;
        const { g, u } = inputs(n, n);
        // Pre-filled output: `=` must overwrite every element.
        const h = bufferFrom(gp, randomNormal(n, 9));
        await runOnce(gp, 'swiglu_fwd.wgsl', {
          constants: { EPT },
          params: ['u', [n]],
          bindings: [bufferFrom(gp, g), bufferFrom(gp, u), h],
          grid: grid1d(Math.ceil(n / (WG * EPT))),
        });
        expectClose(await readF32(gp, h, n), swigluForward(g, u), TOL.swiglu, 'h');
      });
    }

    it(`backward matches the reference at rows=${rows} I=${I}`, async () => {
      const gp = gpu!;
      const { g, u, dh } = inputs(n, n + 1);
      const ref = swigluBackward(dh, g, u);
      const dg = bufferFrom(gp, randomNormal(n, 10));
      const du = bufferFrom(gp, randomNormal(n, 11));
      await runOnce(gp, 'swiglu_bwd.wgsl', {
        params: ['u', [n]],
        bindings: [bufferFrom(gp, dh), bufferFrom(gp, g), bufferFrom(gp, u), dg, du],
        grid: grid1d(Math.ceil(n / WG)),
      });
      expectClose(await readF32(gp, dg, n), ref.dg, TOL.swiglu, 'dg');
      expectClose(await readF32(gp, du, n), ref.du, TOL.swiglu, 'du');
    });
  }

  it('stays finite and exact in the limits for large |g| (no overflow in exp)', async () => {
    const gp = gpu!;
    const g = Float32Array.from([-200, -100, -90, -50, 50, 90, 100, 200]);
    const u = Float32Array.from(g, (_, i) => 1 + i);
    const n = g.length;
    const h = bufferFrom(gp, new Float32Array(n));
    await runOnce(gp, 'swiglu_fwd.wgsl', { params: ['u', [n]], bindings: [bufferFrom(gp, g), bufferFrom(gp, u), h], grid: [1] });
    const got = await readF32(gp, h, n);
    expect([...got].every(Number.isFinite), `h = ${got}`).toBe(true);
    expectClose(got, swigluForward(g, u), TOL.swiglu, 'h at large |g|');
  });
});
