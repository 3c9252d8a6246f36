import { describe, expect, it } from 'vitest';
import { matmulBackward, matmulForward } from '../src/reference/matmul.ts';
import { MATMUL_PARAMS, canUseSubgroupMatmul, matmulKernelFits, matmulKernelFor, matmulParams, matmulSubgroup, matmulSubgroupVec, matmulTiled, matmulVariants, type MatmulDirection, type MatmulKernel } from '../src/ops/matmul.ts';
import { bf16ArrayToF32, f32ArrayToBf16 } from '../src/util/bf16.ts';
import { randomNormal } from '../src/util/random.ts';
import { TOL } from './tolerances.ts';
import { expectClose } from './util/compare.ts';
import { dot, finiteDiffGrad } from './util/finite-diff.ts';
import { bufferFrom, gpu, readF32, runOnce } from './util/gpu.ts';

// [M, N, K]: odd sizes that cross the tiled kernels' 64×64 tiles and 16-step reduction tiles and
// the subgroup kernels' 16-row / 256-column blocks and 8-step reduction chunks unevenly; one size
// aligned to all of them in every direction; a single-row (decode) product; and a long reduction
// over M for the weight gradient (M is its sum axis).
const SIZES: [number, number, number][] = [
  [7, 45, 67],
  [3, 121, 45],
  [33, 67, 121],
  [64, 256, 256],
  [1, 300, 40],
  [300, 20, 33],
];

// Offsets and padding used in the "+=" cases: odd x/y offsets, ldy > N, and an even w_offset, so
// that bf16 rows start on word boundaries when K is even (the kernels' fast path) and on
// alternating halves of words when K is odd. The "=" cases use zero offsets and ldy = N.
const OFFSETS = { xOffset: 3, wOffset: 6, yOffset: 7, ldyPad: 3 };

// Kernels that require K and w_offset multiples of 8 or 4 (matmulKernelFits: the vector-load bf16 kernels) run
// these sizes instead (those that fit): the same odd M and N, K a multiple of 8 (or 4) but not of the 16/32 steps of other
// kernels, and w_offset 8 in the "+=" cases.
const SIZES_K8: [number, number, number][] = [
  [7, 45, 40],
  [3, 121, 8],
  [33, 67, 120],
  [64, 256, 256],
  [1, 300, 40],
  [300, 20, 24],
  [5, 33, 44], // K % 4 == 0 only: the kernels that need K % 8 skip it
];
const W_OFFSET_K8 = 8;
// x_offset of the "+=" cases for the kernels that need it a multiple of 4 (bwd_weight's vec4 X loads).
const X_OFFSET_K4 = 4;

// NaN elements after the guard row, so that reads clamped to the end of the binding see NaN too.
const GUARD = 9;

interface Case {
  M: number;
  N: number;
  K: number;
  bf16: boolean;
  accumulate: boolean;
  /** w_offset of the "+=" cases when not OFFSETS.wOffset. */
  wOffset?: number;
  /** x_offset of the "+=" cases when not OFFSETS.xOffset. */
  xOffset?: number;
}

/**
 * Inputs with NaN in every element the kernel must not read: offset prefixes, ldy padding, and a
 * guard row past the end (a read one row or one element too far poisons the result).
 */
function makeInputs({ M, N, K, bf16, accumulate, wOffset, xOffset }: Case, seed: number) {
  const off = accumulate ? { ...OFFSETS, wOffset: wOffset ?? OFFSETS.wOffset, xOffset: xOffset ?? OFFSETS.xOffset } : { xOffset: 0, wOffset: 0, yOffset: 0, ldyPad: 0 };
  const ldy = N + off.ldyPad;
  const x = randomNormal(M * K, seed);
  const dy = randomNormal(M * N, seed + 1);
  let w = randomNormal(N * K, seed + 2);
  // The kernel sees bf16-rounded weights, so the reference does too.
  if (bf16) w = bf16ArrayToF32(f32ArrayToBf16(w));

  const xBuf = new Float32Array(off.xOffset + (M + 1) * K + GUARD).fill(NaN);
  xBuf.set(x, off.xOffset);
  const dyBuf = new Float32Array(off.yOffset + (M + 1) * ldy + GUARD).fill(NaN);
  for (let m = 0; m < M; m++) dyBuf.set(dy.subarray(m * N, (m + 1) * N), off.yOffset + m * ldy);
  let wBuf: Uint16Array<ArrayBuffer> | Float32Array<ArrayBuffer>;
  if (bf16) {
    wBuf = new Uint16Array(off.wOffset + (N + 1) * K + GUARD).fill(0x7fc0); // bf16 NaN
    f32ArrayToBf16(w, wBuf.subarray(off.wOffset, off.wOffset + N * K));
  } else {
    wBuf = new Float32Array(off.wOffset + (N + 1) * K + GUARD).fill(NaN);
    wBuf.set(w, off.wOffset);
  }
  const shape = { M, N, K, xOffset: off.xOffset, wOffset: off.wOffset, yOffset: off.yOffset, ldy };
  return { x, dy, w, xBuf, dyBuf, wBuf, shape, off };
}

/**
 * Runs one kernel on a pre-filled output buffer (random values everywhere, padding included) and
 * returns [got, expected] over the whole buffer: the window is expected to be `result` (=) or
 * `prefill + result` (+=), everything outside it untouched.
 */
async function runCase(dir: MatmulDirection, mk: MatmulKernel, c: Case, seed: number): Promise<[Float32Array, Float64Array]> {
  const g = gpu!;
  const { x, dy, w, xBuf, dyBuf, wBuf, shape, off } = makeInputs(c, seed);
  const { M, N, K } = c;
  // Output geometry: [rows, cols] window at `base` with row stride `ld` inside a buffer of `total`.
  let rows: number, cols: number, ld: number, base: number, result: Float64Array;
  if (dir === 'fwd') {
    [rows, cols, ld, base, result] = [M, N, shape.ldy, off.yOffset, matmulForward(x, w, M, N, K)];
  } else {
    const ref = matmulBackward(dy, x, w, M, N, K);
    if (dir === 'bwd_input') [rows, cols, ld, base, result] = [M, K, K, off.xOffset, ref.dx];
    else [rows, cols, ld, base, result] = [N, K, K, off.wOffset, ref.dw];
  }
  const total = base + rows * ld + 5;
  const prefill = randomNormal(total, seed + 3);
  const expected = Float64Array.from(prefill);
  for (let r = 0; r < rows; r++) {
    for (let q = 0; q < cols; q++) {
      const i = base + r * ld + q;
      expected[i] = (c.accumulate ? prefill[i] : 0) + result[r * cols + q];
    }
  }
  const out = bufferFrom(g, prefill, 'out');
  const inputs =
    dir === 'fwd' ? [bufferFrom(g, xBuf), bufferFrom(g, wBuf)] :
    dir === 'bwd_input' ? [bufferFrom(g, dyBuf), bufferFrom(g, wBuf)] :
    [bufferFrom(g, dyBuf), bufferFrom(g, xBuf)];
  const constants = { ...mk.constants, ACCUMULATE: c.accumulate, ...(dir === 'bwd_weight' ? {} : { W_BF16: c.bf16 }) };
  await runOnce(g, mk.kernel, {
    constants,
    params: [MATMUL_PARAMS, matmulParams(shape)],
    bindings: [...inputs, out],
    grid: mk.grid(M, N, K),
  });
  const got = await readF32(g, out, total);
  for (const b of [...inputs, out]) b.destroy();
  return [got, expected];
}

describe('matmul reference', () => {
  it('backward matches float64 finite differences (dx and dw)', () => {
    const [M, N, K] = [3, 5, 7];
    const x = randomNormal(M * K, 1);
    const w = randomNormal(N * K, 2);
    const dy = randomNormal(M * N, 3);
    const { dx, dw } = matmulBackward(dy, x, w, M, N, K);
    const fdX = finiteDiffGrad((xx) => dot(dy, matmulForward(xx, w, M, N, K)), x);
    const fdW = finiteDiffGrad((ww) => dot(dy, matmulForward(x, ww, M, N, K)), w);
    expectClose(dx, fdX, TOL.finiteDiff, 'dx vs finite differences');
    expectClose(dw, fdW, TOL.finiteDiff, 'dw vs finite differences');
  });
});

const DIRECTIONS: MatmulDirection[] = ['fwd', 'bwd_input', 'bwd_weight'];

type Combo = Pick<Case, 'bf16' | 'accumulate'>;
const BF16_ADD: Combo = { bf16: true, accumulate: true };
const BF16_SET: Combo = { bf16: true, accumulate: false };
const F32_SET: Combo = { bf16: false, accumulate: false };
const F32_ADD: Combo = { bf16: false, accumulate: true };

function describeCombo(dir: MatmulDirection, { bf16, accumulate }: Combo): string {
  const w = dir === 'bwd_weight' ? '' : bf16 ? 'bf16 W, ' : 'f32 W, ';
  return `${w}${accumulate ? '+= with offsets, ldy > N' : '='}`;
}

function testKernel(dir: MatmulDirection, mk: MatmulKernel, combos: Combo[]): void {
  for (const combo of combos) {
    // bwd_weight has no W operand (its output dW is always f32).
    const c = dir === 'bwd_weight' ? { ...combo, bf16: false } : combo;
    const k8 = mk.requires !== undefined;
    it(`${mk.kernel} ${JSON.stringify(mk.constants)} matches the reference (${describeCombo(dir, c)}${k8 ? `, K % ${mk.requires!.kMultiple} == 0` : ''})`, async () => {
      const xAligned = mk.requires?.offset === 'x_offset';
      const wOffset = k8 && !xAligned ? W_OFFSET_K8 : undefined;
      const xOffset = xAligned ? X_OFFSET_K4 : undefined;
      const sizes = k8 ? SIZES_K8.filter(([, , K]) => matmulKernelFits(mk, { wBf16: c.bf16, K, wOffset: wOffset ?? OFFSETS.wOffset, xOffset: xOffset ?? OFFSETS.xOffset })) : SIZES;
      expect(sizes.length).toBeGreaterThanOrEqual(5);
      for (const [M, N, K] of sizes) {
        const [got, expected] = await runCase(dir, mk, { M, N, K, ...c, wOffset, xOffset }, M * 7919 + N * 31 + K);
        expectClose(got, expected, TOL.matmul, `${mk.kernel} M=${M} N=${N} K=${K}`);
      }
    });
  }
}

// Every kernel runs each weight type and each output mode at least once (W_BF16 and ACCUMULATE
// are independent code paths), in the configurations matmulKernelFor returns. lavapipe compiles a
// pipeline on first use (1-5 s for the unrolled subgroup kernels on this machine), so each
// configuration gets the fewest combinations that complete the coverage; ROWS = 5 adds a partial
// row block at every M here.
describe.skipIf(!gpu)('matmul kernels', () => {
  for (const dir of DIRECTIONS) {
    describe(dir, () => {
      const wFree = dir === 'bwd_weight';
      testKernel(dir, matmulTiled(dir), wFree ? [F32_SET, F32_ADD] : [BF16_ADD, F32_SET]);
      if (gpu && canUseSubgroupMatmul(gpu)) {
        testKernel(dir, matmulSubgroup(dir, 5), [BF16_SET]);
        if (wFree) {
          testKernel(dir, matmulKernelFor(gpu, dir), [F32_ADD]);
          // The vector-load kernel: its default rows (set and +=) and 5 rows (a partial row block).
          testKernel(dir, matmulKernelFor(gpu, dir, { K: 64 }), [F32_SET, F32_ADD]);
          testKernel(dir, matmulSubgroupVec(dir, 5), [F32_SET]);
        } else {
          testKernel(dir, matmulKernelFor(gpu, dir, { wBf16: true }), [BF16_ADD]);
          testKernel(dir, matmulKernelFor(gpu, dir, { wBf16: false }), [F32_ADD]);
        }
        if (dir === 'fwd') testKernel(dir, matmulKernelFor(gpu, dir, { wBf16: true, rows: 1 }), [BF16_ADD]);
        if (!wFree) {
          // The vector-load bf16 kernels: their default rows (set and +=), 5 rows (a partial row
          // block at every M here), and decode's one row.
          testKernel(dir, matmulKernelFor(gpu, dir, { wBf16: true, K: 64 }), [BF16_SET, BF16_ADD]);
          testKernel(dir, matmulSubgroupVec(dir, 5), [BF16_SET]);
          if (dir === 'fwd') testKernel(dir, matmulKernelFor(gpu, dir, { wBf16: true, K: 64, rows: 1 }), [BF16_ADD]);
        }
      }
    });
  }

  it('matmulKernelFor picks the subgroup kernels exactly when the device can run them', () => {
    const expected = canUseSubgroupMatmul(gpu!) ? 'matmul_fwd_subgroup.wgsl' : 'matmul_fwd.wgsl';
    expect(matmulKernelFor(gpu!, 'fwd').kernel).toBe(expected);
    expect(matmulVariants(gpu!, 'fwd').map((v) => v.kernel)).toContain(expected);
    if (canUseSubgroupMatmul(gpu!)) {
      // bf16 W with K % 8 == 0 (fwd) / K % 4 == 0 (bwd_input) gets the vector-load kernels; other
      // K and f32 W never do.
      expect(matmulKernelFor(gpu!, 'fwd', { wBf16: true, K: 512 }).kernel).toBe('matmul_fwd_subgroup_vec4.wgsl');
      expect(matmulKernelFor(gpu!, 'bwd_input', { wBf16: true, K: 44 }).kernel).toBe('matmul_bwd_input_subgroup_vec2.wgsl');
      expect(matmulKernelFor(gpu!, 'bwd_weight', { K: 44 }).kernel).toBe('matmul_bwd_weight_subgroup_vec4.wgsl');
      for (const [dir, wBf16, K] of [['fwd', true, 44], ['fwd', false, 512], ['bwd_input', true, 42], ['bwd_input', false, 512], ['bwd_weight', false, 42]] as const) {
        expect(matmulKernelFor(gpu!, dir, { wBf16, K }).requires).toBeUndefined();
      }
    }
  });

  // The serving engine relies on a row's bits not depending on M or on the rows per workgroup
  // (LinearOp's one-row and general configurations; test/batch-engine.test.ts): the vector-load
  // kernels keep the subgroup kernels' per-element fma order, so all of them agree bit for bit.
  // bwd_weight's vector-load kernel keeps the subgroup kernel's order over m too.
  it.skipIf(!gpu || !canUseSubgroupMatmul(gpu))('the subgroup and vector-load kernels give bit-identical results for every ROWS (fwd / bwd_input bf16, bwd_weight)', async () => {
    for (const dir of DIRECTIONS) {
      const c: Case = { M: 11, N: 300, K: 120, bf16: dir !== 'bwd_weight', accumulate: false };
      const kernels = [matmulSubgroup(dir, 8), matmulSubgroup(dir, 1), matmulSubgroupVec(dir, 8), matmulSubgroupVec(dir, 1), matmulSubgroupVec(dir, 3)];
      if (dir === 'bwd_weight') kernels.push(matmulSubgroup(dir, 16));
      const outs: Float32Array[] = [];
      for (const mk of kernels) outs.push((await runCase(dir, mk, c, 5))[0]);
      for (const o of outs.slice(1)) expect(new Uint32Array(o.buffer)).toEqual(new Uint32Array(outs[0].buffer));
    }
  });
});

it('test inputs are non-trivial (bf16 rounding changes the weights, NaN guards are in place)', () => {
  const { w, wBuf, dyBuf } = makeInputs({ M: 3, N: 45, K: 7, bf16: true, accumulate: true }, 1);
  const raw = randomNormal(45 * 7, 3);
  expect(w.some((v, i) => v !== raw[i])).toBe(true);
  expect(new Set(w).size).toBeGreaterThan(w.length / 2);
  expect(wBuf[0]).toBe(0x7fc0);
  expect(Number.isNaN(dyBuf[0])).toBe(true);
});
