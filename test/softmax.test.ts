import { describe, expect, it } from 'vitest';
import { grid1d } from '../src/gpu/kernels.ts';
import { softmaxForward } from '../src/reference/softmax.ts';
import { randomNormal } from '../src/util/random.ts';
import { TOL } from './tolerances.ts';
import { expectClose } from './util/compare.ts';
import { bufferFrom, gpu, readF32, runOnce } from './util/gpu.ts';

// [R, V, temperature]: odd vocabularies (V < and > the 256-thread workgroup), the LLaMA vocabulary,
// one aligned size; temperatures from sharp to flat.
const CASES: [number, number, number][] = [
  [7, 67, 0.7],
  [3, 121, 1],
  [2, 32000, 0.8],
  [4, 1024, 1.5],
  [3, 45, 0.01],
];

describe('softmax reference', () => {
  it('is a probability distribution that ranks like the logits', () => {
    const V = 13;
    const logits = randomNormal(V, 1, 3);
    const p = softmaxForward(logits, 1, V, 1 / 0.7);
    expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    for (let i = 0; i < V; i++) for (let j = 0; j < V; j++) if (logits[i] < logits[j]) expect(p[i]).toBeLessThan(p[j]);
  });
});

// Threads per row: the GPU's 256 and lavapipe's 8 (src/ops/softmax.ts), and 64.
const THREADS = [256, 64, 8];

describe.skipIf(!gpu)('softmax_fwd.wgsl', () => {
  for (const [R, V, temperature] of CASES) for (const WG of THREADS) {
    it(`matches the reference at R=${R} V=${V} temperature=${temperature} with ${WG} threads a row`, async () => {
      const g = gpu!;
      const offset = 11; // logits of this dispatch start mid-buffer (row chunks of a larger logits buffer)
      const data = randomNormal(offset + R * V, R * V, 3);
      const logits = data.subarray(offset);
      // probs land mid-buffer too (a row's slot among a step's rows); the buffer is pre-filled: `=` must overwrite
      const probsOffset = 5;
      const before = randomNormal(probsOffset + R * V, 2);
      const probs = bufferFrom(g, before);
      await runOnce(g, 'softmax_fwd.wgsl', {
        constants: { WG },
        params: ['uuuuf', [R, V, offset, probsOffset, 1 / temperature]],
        bindings: [bufferFrom(g, data), probs],
        grid: grid1d(R),
      });
      const all = await readF32(g, probs, probsOffset + R * V);
      expect(all.subarray(0, probsOffset), 'elements before probs_offset untouched').toEqual(before.subarray(0, probsOffset));
      const got = all.subarray(probsOffset);
      expectClose(got, softmaxForward(logits, R, V, 1 / temperature), TOL.softmax, 'probs');
      for (let r = 0; r < R; r++) {
        let s = 0;
        for (let v = 0; v < V; v++) s += got[r * V + v];
        expect(Math.abs(s - 1), `row ${r} sums to ${s}`).toBeLessThan(1e-4);
      }
    });
  }

  it('stays finite for huge logits (max subtraction)', async () => {
    const g = gpu!;
    const V = 67;
    const logits = randomNormal(V, 5, 1000);
    const probs = bufferFrom(g, new Float32Array(V));
    await runOnce(g, 'softmax_fwd.wgsl', { params: ['uuuuf', [1, V, 0, 0, 1]], bindings: [bufferFrom(g, logits), probs], grid: [1] });
    const got = await readF32(g, probs, V);
    expect([...got].every(Number.isFinite)).toBe(true);
    expectClose(got, softmaxForward(logits, 1, V, 1), TOL.softmax, 'probs of huge logits');
  });
});
