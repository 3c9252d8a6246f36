/**
 * LoRA's scaled dropout (kernels/dropout_fwd.wgsl, dropout_bwd.wgsl) against the reference
 * (src/reference/dropout.ts): the same mask from (key, index), the scale folded in, the backward
 * adding to a pre-filled dx; the reference's backward against float64 finite differences; the
 * mask's drop rate and its independence across keys.
 */
import { describe, expect, it } from 'vitest';
import { grid1d } from '../src/gpu/kernels.ts';
import { dropBelowOf, dropoutBackward, dropoutForward, dropoutKept, pcgHash } from '../src/reference/dropout.ts';
import { randomNormal } from '../src/util/random.ts';
import { TOL } from './tolerances.ts';
import { expectClose } from './util/compare.ts';
import { dot, finiteDiffGrad } from './util/finite-diff.ts';
import { bufferFrom, gpu, readF32, runOnce } from './util/gpu.ts';

const WG = 256; // the kernels' default workgroup size
// [rows, in]: odd sizes leave a partial last workgroup; [8, 256] is aligned.
const SIZES: [number, number][] = [[7, 45], [3, 121], [1, 67], [8, 256]];
const CASES = [
  { p: 0, scale: 2, key: 0x9e3779b9 },
  { p: 0.05, scale: 2, key: 12345 },
  { p: 0.5, scale: 0.25, key: 777 },
];

describe('dropout reference', () => {
  it('the PCG hash is a fixed permutation: known values, and distinct outputs for distinct inputs', () => {
    const seen = new Set<number>();
    for (let v = 0; v < 4096; v++) seen.add(pcgHash(v));
    expect(seen.size).toBe(4096);
    expect(pcgHash(0)).toBe(pcgHash(0));
    expect(pcgHash(1)).not.toBe(pcgHash(2));
  });

  it('drops close to p of the elements, with different masks for different keys', () => {
    const n = 20000;
    for (const p of [0.05, 0.1, 0.5]) {
      const below = dropBelowOf(p);
      let dropped = 0;
      let differ = 0;
      for (let i = 0; i < n; i++) {
        const a = dropoutKept(1, i, below);
        if (!a) dropped++;
        if (a !== dropoutKept(2, i, below)) differ++;
      }
      const sigma = Math.sqrt(n * p * (1 - p));
      expect(Math.abs(dropped - n * p)).toBeLessThan(5 * sigma);
      // Two independent masks differ on 2p(1 − p) of the elements.
      expect(Math.abs(differ - n * 2 * p * (1 - p))).toBeLessThan(5 * Math.sqrt(n * 2 * p * (1 - p)));
    }
    expect(dropBelowOf(0)).toBe(0);
  });

  it('backward matches float64 finite differences', () => {
    const x = randomNormal(41, 3);
    const dout = randomNormal(41, 4);
    for (const c of CASES) {
      const dx = dropoutBackward(dout, c.key, c.p, c.scale);
      expectClose(dx, finiteDiffGrad((xx) => dot(dout, dropoutForward(xx, c.key, c.p, c.scale)), x), TOL.finiteDiff, `dx, p=${c.p}`);
    }
  });
});

describe.skipIf(!gpu)('dropout_fwd.wgsl / dropout_bwd.wgsl', () => {
  for (const [rows, cols] of SIZES) {
    for (const c of CASES) {
      const n = rows * cols;
      const params = (p: typeof c): [string, number[]] => ['uuuf', [n, p.key, dropBelowOf(p.p), p.scale / (1 - p.p)]];

      it(`forward and backward match the reference at [${rows}, ${cols}], p=${c.p}`, async () => {
        const g = gpu!;
        const x = randomNormal(n, n + 1);
        const out = bufferFrom(g, randomNormal(n, 9)); // `=` must overwrite every element
        await runOnce(g, 'dropout_fwd.wgsl', { params: params(c), bindings: [bufferFrom(g, x), out], grid: grid1d(Math.ceil(n / WG)) });
        expectClose(await readF32(g, out, n), dropoutForward(x, c.key, c.p, c.scale), TOL.dropout, 'out');

        const dout = randomNormal(n, n + 2);
        const prior = randomNormal(n, n + 3); // `+=` must add to it
        const dx = bufferFrom(g, prior);
        await runOnce(g, 'dropout_bwd.wgsl', { params: params(c), bindings: [bufferFrom(g, dout), dx], grid: grid1d(Math.ceil(n / WG)) });
        const ref = dropoutBackward(dout, c.key, c.p, c.scale);
        expectClose(await readF32(g, dx, n), ref.map((v, i) => v + prior[i]), TOL.dropout, 'dx');
      });
    }
  }
});
