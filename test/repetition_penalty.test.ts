import { describe, expect, it } from 'vitest';
import { grid1d } from '../src/gpu/kernels.ts';
import { repetitionPenaltyForward } from '../src/reference/repetition_penalty.ts';
import { distinctIds } from '../src/gen/sequence.ts';
import { Rng, randomNormal } from '../src/util/random.ts';
import { TOL } from './tolerances.ts';
import { expectClose } from './util/compare.ts';
import { bufferFrom, gpu, readF32, runOnce } from './util/gpu.ts';

const WG = 64; // repetition_penalty_fwd.wgsl's default

describe('repetition penalty reference', () => {
  it('divides positive logits, multiplies negative ones, once per distinct id', () => {
    const out = repetitionPenaltyForward([2, -2, 1, 0.5], [0, 1, 1, 1, 7], 1.25);
    expect([...out]).toEqual([2 / 1.25, -2 * 1.25, 1, 0.5]);
  });
});

describe.skipIf(!gpu)('repetition_penalty_fwd.wgsl', () => {
  // V odd and one workgroup-aligned case; contexts with repeats, ids crossing workgroups, and an id >= V.
  for (const [V, ctxLen, offsetRows] of [[67, 45, 0], [4000, 300, 2], [128, 64, 1]] as const) {
    it(`V=${V}, ${ctxLen} context tokens, row ${offsetRows}`, async () => {
      const g = gpu!;
      const rng = new Rng(V + ctxLen);
      const rows = offsetRows + 1;
      const logits0 = randomNormal(rows * V, V);
      const context = Array.from({ length: ctxLen }, () => rng.int(Math.ceil(V / 2))); // many repeats
      context.push(V + 3); // out of range: ignored
      const ids = distinctIds(context);
      // The ids start mid-buffer (one row's region among a step's rows), after ids that must not be read.
      const idsOffset = offsetRows * 3;
      const idsBuf = new Uint32Array(idsOffset + ids.length).fill(V - 1);
      idsBuf.set(ids, idsOffset);
      const buf = bufferFrom(g, logits0);
      await runOnce(g, 'repetition_penalty_fwd.wgsl', {
        params: ['uuuuf', [ids.length, V, idsOffset, offsetRows * V, 1.3]],
        bindings: [bufferFrom(g, idsBuf), buf],
        grid: grid1d(Math.ceil(ids.length / WG)),
      });
      const out = await readF32(g, buf, rows * V);
      const want = Float64Array.from(logits0);
      want.set(repetitionPenaltyForward(logits0.subarray(offsetRows * V), context, 1.3), offsetRows * V);
      expectClose(out, want, TOL.repetitionPenalty, 'logits');
    });
  }
});
