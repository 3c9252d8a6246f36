import { describe, expect, it } from 'vitest';
import { grid1d } from '../src/gpu/kernels.ts';
import { crossEntropyBackward, crossEntropyForward } from '../src/reference/cross_entropy.ts';
import { randomNormal, Rng } from '../src/util/random.ts';
import { TOL } from './tolerances.ts';
import { expectClose } from './util/compare.ts';
import { finiteDiffGrad } from './util/finite-diff.ts';
import { bufferFrom, emptyBuffer, gpu, readF32, runOnce } from './util/gpu.ts';

interface Case {
  R: number;
  V: number;
  /** Rows with target -1 (no loss). */
  masked: number[];
  /** Logit rows per dispatch (the model computes logits in row chunks). */
  chunkRows: number;
}

// V = 67 / 121 with masked rows and a 2-chunk split; V = 32000 (the LLaMA vocabulary: 125 elements
// per thread of the 256-thread row reduction) with a masked row; one aligned size.
const CASES: Case[] = [
  { R: 7, V: 67, masked: [1, 4], chunkRows: 4 },
  { R: 3, V: 121, masked: [2], chunkRows: 3 },
  { R: 3, V: 32000, masked: [1], chunkRows: 2 },
  { R: 4, V: 1024, masked: [], chunkRows: 4 },
];

function inputs(c: Case, seed: number) {
  // Spread logits (σ = 3) so the softmax is far from uniform, as in a trained model.
  const logits = randomNormal(c.R * c.V, seed, 3);
  const rng = new Rng(seed + 1);
  const targets = new Int32Array(c.R);
  for (let r = 0; r < c.R; r++) targets[r] = c.masked.includes(r) ? -1 : rng.int(c.V);
  if (!c.masked.includes(c.R - 1)) targets[c.R - 1] = c.V - 1; // the last column is a target too
  const gradScale = 1 / targets.filter((t) => t >= 0).length;
  return { logits, targets, gradScale };
}

describe('cross-entropy reference', () => {
  it('backward matches float64 finite differences of the mean loss (masked rows included)', () => {
    const c: Case = { R: 4, V: 6, masked: [2], chunkRows: 4 };
    const { logits, targets, gradScale } = inputs(c, 1);
    const meanLoss = (l: Float64Array) => crossEntropyForward(l, targets, c.V).reduce((a, b) => a + b, 0) * gradScale;
    const fd = finiteDiffGrad(meanLoss, logits);
    expectClose(crossEntropyBackward(logits, targets, c.V, gradScale), fd, TOL.finiteDiff, 'dlogits vs finite differences');
  });
});

describe.skipIf(!gpu)('cross_entropy_fwd_bwd.wgsl', () => {
  for (const c of CASES) {
    for (const writeGrad of [true, false]) {
      it(`matches the reference at R=${c.R} V=${c.V}, masked rows [${c.masked}], ${writeGrad ? 'loss + in-place gradient' : 'loss only'}`, async () => {
        const g = gpu!;
        const { logits, targets, gradScale } = inputs(c, c.R * 100 + c.V);
        const refLoss = crossEntropyForward(logits, targets, c.V);
        const refGrad = crossEntropyBackward(logits, targets, c.V, gradScale);
        const loss = bufferFrom(g, randomNormal(c.R, 3)); // pre-filled: every row must be written (=)
        const targetBuf = bufferFrom(g, targets);
        const got = new Float32Array(c.R * c.V);
        // Each chunk sits at an element offset inside its buffer, after junk that must stay untouched.
        for (let r0 = 0; r0 < c.R; r0 += c.chunkRows) {
          const rows = Math.min(c.chunkRows, c.R - r0);
          const pad = 5 + r0;
          const junk = randomNormal(pad, 4);
          const data = new Float32Array(pad + rows * c.V);
          data.set(junk);
          data.set(logits.subarray(r0 * c.V, (r0 + rows) * c.V), pad);
          const buf = bufferFrom(g, data);
          await runOnce(g, 'cross_entropy_fwd_bwd.wgsl', {
            constants: { WRITE_GRAD: writeGrad },
            params: ['uuuuf', [rows, c.V, pad, r0, gradScale]],
            bindings: [buf, targetBuf, loss],
            grid: grid1d(rows),
          });
          const after = await readF32(g, buf, data.length);
          expect([...after.subarray(0, pad)]).toEqual([...junk]);
          got.set(after.subarray(pad), r0 * c.V);
        }
        expectClose(await readF32(g, loss, c.R), refLoss, TOL.crossEntropyLoss, 'loss');
        if (writeGrad) {
          expectClose(got, refGrad, TOL.crossEntropyGrad, 'dlogits');
          for (const r of c.masked) expect(got.subarray(r * c.V, (r + 1) * c.V).every((v) => v === 0), `masked row ${r} is zero`).toBe(true);
        } else {
          expect([...got]).toEqual([...logits]);
        }
      });
    }
  }
});

describe.skipIf(!gpu)('sum_fwd.wgsl', () => {
  // n below one 256-thread workgroup (one pass's worth), around it, and large enough for a real two-pass split.
  for (const [n, chunk] of [[7, 4096], [1000, 256], [1027, 256], [100003, 4096]]) {
    for (const accumulate of [false, true]) {
      it(`two passes sum n=${n} (chunk ${chunk}) into one scalar, scaled (${accumulate ? '+=' : '='})`, async () => {
        const g = gpu!;
        const inOffset = 3;
        const x = randomNormal(inOffset + n, n);
        const scale = 1 / 7;
        let expected = 0;
        for (let i = 0; i < n; i++) expected += x[inOffset + i];
        const prior = 0.625;
        expected = expected * scale + (accumulate ? prior : 0);
        const G = Math.ceil(n / chunk);
        const partials = emptyBuffer(g, G * 4);
        await runOnce(g, 'sum_fwd.wgsl', {
          params: ['uuuuf', [n, inOffset, 0, chunk, 1]],
          bindings: [bufferFrom(g, x), partials],
          grid: grid1d(G),
        });
        // The result lands at an offset of a pre-filled buffer: only that element changes.
        const out = bufferFrom(g, Float32Array.from([9, 9, prior, 9]));
        await runOnce(g, 'sum_fwd.wgsl', {
          constants: { ACCUMULATE: accumulate },
          params: ['uuuuf', [G, 0, 2, G, scale]],
          bindings: [partials, out],
          grid: [1],
        });
        const got = await readF32(g, out, 4);
        expectClose([got[2]], [expected], TOL.sum, 'sum');
        expect([got[0], got[1], got[3]]).toEqual([9, 9, 9]);
      });
    }
  }
});
