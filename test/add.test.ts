import { describe, it } from 'vitest';
import { grid1d } from '../src/gpu/kernels.ts';
import { randomNormal } from '../src/util/random.ts';
import { TOL } from './tolerances.ts';
import { expectClose } from './util/compare.ts';
import { bufferFrom, gpu, readF32, runOnce } from './util/gpu.ts';

const WG = 256; // add_fwd.wgsl's default workgroup size

describe.skipIf(!gpu)('add_fwd.wgsl', () => {
  // Below one workgroup, partial last workgroups, and an aligned size.
  for (const n of [7, 1000, 1027, 3 * 121, 1024]) {
    it(`y += x at n=${n}`, async () => {
      const g = gpu!;
      const x = randomNormal(n, n);
      const y0 = randomNormal(n + 5, n + 1); // 5 elements past n must stay untouched
      const y = bufferFrom(g, y0);
      await runOnce(g, 'add_fwd.wgsl', { params: ['u', [n]], bindings: [bufferFrom(g, x), y], grid: grid1d(Math.ceil(n / WG)) });
      // One f32 addition per element: the same rounding on both sides.
      const expected = Float32Array.from(y0, (v, i) => (i < n ? Math.fround(v + x[i]) : v));
      expectClose(await readF32(g, y, n + 5), expected, TOL.add, 'y');
    });
  }
});
