/**
 * The per-submit uniform arena (src/gpu/uniforms.ts): one Op recorded many times in one submit,
 * each dispatch with its own Params, must run every dispatch with its own values — across arena
 * pages, and with two recorders open at once.
 */
import { describe, expect, it } from 'vitest';
import { Op, Recorder } from '../src/gpu/kernels.ts';
import { PAGE_BYTES, paramBytes } from '../src/gpu/uniforms.ts';
import { randomNormal } from '../src/util/random.ts';
import { TOL } from './tolerances.ts';
import { expectClose } from './util/compare.ts';
import { bufferFrom, emptyBuffer, gpu, readF32 } from './util/gpu.ts';

const SUM_PARAMS = 'uuuuf';

/** A sum_fwd op (one workgroup sums x[in_offset, in_offset + n) · scale into out[out_offset]). */
async function sumOp(x: Float32Array, outElems: number) {
  const g = gpu!;
  const xBuf = bufferFrom(g, x);
  const out = emptyBuffer(g, outElems * 4);
  const op = await Op.create(g, { kernel: 'sum_fwd.wgsl', constants: { ACCUMULATE: false }, params: SUM_PARAMS, bindings: [xBuf, out] });
  return { op, out };
}

/** Seeded per-dispatch Params: a different slice, length and scale for every dispatch. */
function calls(count: number, xLen: number) {
  return Array.from({ length: count }, (_, i) => {
    const n = 1 + ((i * 37) % 45);
    const inOffset = (i * 13) % (xLen - n);
    return { n, inOffset, outOffset: i, scale: 0.5 + (i % 7) * 0.25 };
  });
}

function expected(x: Float32Array, cs: ReturnType<typeof calls>): Float64Array {
  return Float64Array.from(cs, (c) => {
    let s = 0;
    for (let k = 0; k < c.n; k++) s += x[c.inOffset + k];
    return s * c.scale;
  });
}

function record(rec: Recorder, op: Op, cs: ReturnType<typeof calls>): void {
  for (const c of cs) rec.dispatch(op, [c.n, c.inOffset, c.outOffset, Math.max(c.n, 1), c.scale], 1);
}

describe.skipIf(!gpu)('uniform arena', () => {
  it('runs one op recorded 9 times in one submit with 9 different Params', async () => {
    const x = randomNormal(301, 11);
    const cs = calls(9, x.length);
    const { op, out } = await sumOp(x, cs.length);
    const rec = new Recorder(gpu!, 'arena');
    record(rec, op, cs);
    rec.submit();
    expectClose(await readF32(gpu!, out, cs.length), expected(x, cs), TOL.sum);
  });

  it('spills to a second page and still gives every dispatch its values', async () => {
    const perPage = Math.floor(PAGE_BYTES / Math.max(paramBytes(SUM_PARAMS), gpu!.device.limits.minUniformBufferOffsetAlignment));
    const x = randomNormal(257, 12);
    const cs = calls(perPage + 37, x.length);
    const { op, out } = await sumOp(x, cs.length);
    const rec = new Recorder(gpu!, 'arena pages');
    record(rec, op, cs);
    rec.submit();
    expectClose(await readF32(gpu!, out, cs.length), expected(x, cs), TOL.sum);
  });

  it('keeps two recorders open at once apart (both write the arena from slot 0)', async () => {
    const x = randomNormal(199, 13);
    const a = calls(5, x.length);
    const b = calls(12, x.length).slice(5);
    const { op, out } = await sumOp(x, 12);
    const recA = new Recorder(gpu!, 'a');
    const recB = new Recorder(gpu!, 'b');
    record(recA, op, a);
    record(recB, op, b);
    recA.submit();
    recB.submit();
    expectClose(await readF32(gpu!, out, 12), expected(x, [...a, ...b]), TOL.sum);
  });

  it('rejects Params of the wrong length and recording after submit', async () => {
    const { op } = await sumOp(randomNormal(16, 14), 1);
    const rec = new Recorder(gpu!, 'bad');
    expect(() => rec.dispatch(op, [1, 2, 3], 1)).toThrow(/3 params given, layout 'uuuuf' wants 5/);
    rec.submit();
    expect(() => rec.dispatch(op, [1, 0, 0, 1, 1], 1)).toThrow(/recorded after submit/);
  });
});
