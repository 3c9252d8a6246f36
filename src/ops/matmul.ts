/**
 * The matmul op: which matmul kernel to run, with which tile constants and grid (so the model
 * code never needs to know tile sizes), and the three Linear wrappers over a weight stored in row
 * chunks: LinearOp (forward), LinearGradInputOp and LinearGradWeightOp (backward). All matmul kernels share one Params layout and one binding order per
 * direction (see the kernel headers):
 *
 *   params  MATMUL_PARAMS = 'uuuuuuu': [M, N, K, x_offset, w_offset, y_offset, ldy] (elements)
 *   fwd         bindings (x, w, y):   y[y_offset + m·ldy + n]  =/+=  Σ_k x[m, k] · w[n, k]
 *   bwd_input   bindings (dy, w, dx): dx[x_offset + m·K + k]   =/+=  Σ_n dy[m, n] · w[n, k]
 *   bwd_weight  bindings (dy, x, dw): dw[w_offset + n·K + k]   =/+=  Σ_m dy[m, n] · x[m, k]
 *   The caller adds W_BF16 (fwd, bwd_input) and ACCUMULATE to `constants`.
 *
 * Usage of a bare kernel (the Linear ops below do this per weight chunk):
 *   const mk = matmulKernelFor(gpu, 'fwd', { wBf16: true });
 *   const op = await Op.create(gpu, { kernel: mk.kernel, constants: { ...mk.constants, W_BF16: true, ACCUMULATE: false },
 *                                     bindings: [x, w, y], params: MATMUL_PARAMS });
 *   rec.dispatch(op, matmulParams({ M, N, K, ldy: N }), ...mk.grid(M, N, K));
 */
import type { Gpu } from '../gpu/device.ts';
import { Op, type Binding, type OverrideConstants, type Recorder } from '../gpu/kernels.ts';
import type { ParamChunk, ParamEntry } from '../model/param-table.ts';
import type { GpuBuffer } from '../gpu/buffers.ts';
import type { ModelOp, OpCall, WeightRef } from './op.ts';

export type MatmulDirection = 'fwd' | 'bwd_input' | 'bwd_weight';

export const MATMUL_PARAMS = 'uuuuuuu';

export interface MatmulShape {
  M: number;
  N: number;
  K: number;
  xOffset?: number;
  wOffset?: number;
  yOffset?: number;
  /** Row stride of Y / dY in elements; defaults to N. */
  ldy?: number;
}

/** The Params values in MATMUL_PARAMS order. */
export function matmulParams(s: MatmulShape): number[] {
  const ldy = s.ldy ?? s.N;
  if (ldy < s.N) throw new Error(`matmul: ldy ${ldy} < N ${s.N}`);
  return [s.M, s.N, s.K, s.xOffset ?? 0, s.wOffset ?? 0, s.yOffset ?? 0, ldy];
}

export interface MatmulKernel {
  kernel: string;
  /**
   * What the kernel requires beyond the Params (absent: nothing): K and one offset (`offset`:
   * w_offset for the bf16 weight loads, x_offset for bwd_weight's X loads) multiples of
   * `kMultiple` (elements), and bf16 W when `wBf16`. matmulKernelFits checks a product against it.
   */
  requires?: { wBf16?: true; kMultiple: number; offset: 'w_offset' | 'x_offset' };
  /** Tile constants; add W_BF16 / ACCUMULATE to them. */
  constants: OverrideConstants;
  /** Workgroup counts (x, y) for a product of these sizes (M rows, N out features, K in features). */
  grid(M: number, N: number, K: number): [number, number];
}

const ceilDiv = (a: number, b: number) => Math.ceil(a / b);

// Classic tiling: 16×16 invocations × 4×4 outputs = 64×64 tiles (kernels/include/matmul_tiled.wgsl).
const TILED = { WG_M: 16, WG_N: 16, RM: 4, RN: 4, TILE_S: 16 };
const TILE_M = TILED.WG_M * TILED.RM;
const TILE_N = TILED.WG_N * TILED.RN;

/** The classic shared-memory tiled kernel of a direction: runs on every WebGPU device. */
export function matmulTiled(dir: MatmulDirection): MatmulKernel {
  const constants = { ...TILED };
  switch (dir) {
    case 'fwd':
      return { kernel: 'matmul_fwd.wgsl', constants, grid: (M, N) => [ceilDiv(N, TILE_N), ceilDiv(M, TILE_M)] };
    case 'bwd_input':
      return { kernel: 'matmul_bwd_input.wgsl', constants, grid: (M, _N, K) => [ceilDiv(K, TILE_N), ceilDiv(M, TILE_M)] };
    case 'bwd_weight':
      return { kernel: 'matmul_bwd_weight.wgsl', constants, grid: (_M, N, K) => [ceilDiv(K, TILE_N), ceilDiv(N, TILE_M)] };
  }
}

// Subgroup variant: WG invocations × 4 columns, ROWS rows per workgroup
// (kernels/include/matmul_subgroup.wgsl). More rows mean fewer B loads per FMA but a bigger
// unrolled loop: on lavapipe (Mesa 25, 2 cores, medians of interleaved runs) 16 rows are best with
// f32 W and for bwd_weight, 8 rows with bf16 W (fwd and bwd_input 1.3-1.6× faster than 16).
// Small M (decode, M = 1) wants ROWS = M: the rows past M are computed and dropped.
const SUBGROUP = { WG: 64, ROWS: 16, ROWS_BF16: 8 };
const SUBGROUP_MAX_ROWS = 32;

/**
 * The barrier-free subgroup-broadcast kernel of a direction. `rows` (1 ..32) is how many rows of
 * the output one workgroup computes (default 16; matmulKernelFor picks it).
 */
export function matmulSubgroup(dir: MatmulDirection, rows = SUBGROUP.ROWS): MatmulKernel {
  if (!(rows >= 1 && rows <= SUBGROUP_MAX_ROWS && Number.isInteger(rows))) {
    throw new Error(`matmulSubgroup: rows ${rows} must be an integer in [1, ${SUBGROUP_MAX_ROWS}]`);
  }
  const constants = { WG: SUBGROUP.WG, ROWS: rows };
  const cols = 4 * SUBGROUP.WG;
  switch (dir) {
    case 'fwd':
      return { kernel: 'matmul_fwd_subgroup.wgsl', constants, grid: (M, N) => [ceilDiv(N, cols), ceilDiv(M, rows)] };
    case 'bwd_input':
      return { kernel: 'matmul_bwd_input_subgroup.wgsl', constants, grid: (M, _N, K) => [ceilDiv(K, cols), ceilDiv(M, rows)] };
    case 'bwd_weight':
      return { kernel: 'matmul_bwd_weight_subgroup.wgsl', constants, grid: (_M, N, K) => [ceilDiv(K, cols), ceilDiv(N, rows)] };
  }
}

// The vector-load kernels: the subgroup kernels' tiling and reduction order (bit-identical
// results), but the invocation's own operand comes in vector loads, the rows are explicit
// accumulators and each step updates every row before the next step's operand is formed. The
// forward and the input gradient for bf16 W with K a multiple of 8 / 4 (every LLaMA shape): one
// vec4<u32> (fwd: 8 weights) or vec2<u32> (bwd_input: 4 weights) load replaces 2-5 u32 loads
// (kernels/matmul_fwd_subgroup_vec4.wgsl, matmul_bwd_input_subgroup_vec2.wgsl). The weight gradient
// with K and x_offset multiples of 4: one vec4<f32> load of X replaces 4 clamped ones
// (matmul_bwd_weight_subgroup_vec4.wgsl). On lavapipe (Mesa 25, 2 cores, medians of interleaved
// runs of scratch-sized products; numbers in the commit messages), at M = 512 against the subgroup
// kernel: fwd 32 vs 21 GFLOP/s (30M ffn up) and 41 vs 25 (7B 4096²), bwd_input 28 vs 23 and 20 vs
// 15, bwd_weight 20 vs 14 and 19 vs 11; decode (M = 1, one row) 9.8 vs 3.3. 16 rows beat 8 and 12.
const SUBGROUP_VEC = { WG: 64, ROWS: 16 };
const VEC_KERNELS = {
  fwd: { kernel: 'matmul_fwd_subgroup_vec4.wgsl', requires: { wBf16: true, kMultiple: 8, offset: 'w_offset' } },
  bwd_input: { kernel: 'matmul_bwd_input_subgroup_vec2.wgsl', requires: { wBf16: true, kMultiple: 4, offset: 'w_offset' } },
  bwd_weight: { kernel: 'matmul_bwd_weight_subgroup_vec4.wgsl', requires: { kMultiple: 4, offset: 'x_offset' } },
} as const;

/**
 * The vector-load kernel of `dir`; `rows` (1 ..16) rows per workgroup (default 16). It runs the
 * products matmulKernelFits accepts (fwd / bwd_input: bf16 W, K and w_offset multiples of 8 / 4;
 * bwd_weight: K and x_offset multiples of 4).
 */
export function matmulSubgroupVec(dir: MatmulDirection, rows = SUBGROUP_VEC.ROWS): MatmulKernel {
  if (!(rows >= 1 && rows <= SUBGROUP_VEC.ROWS && Number.isInteger(rows))) {
    throw new Error(`matmulSubgroupVec: rows ${rows} must be an integer in [1, ${SUBGROUP_VEC.ROWS}]`);
  }
  const { kernel, requires } = VEC_KERNELS[dir];
  const cols = 4 * SUBGROUP_VEC.WG;
  const grid: MatmulKernel['grid'] =
    dir === 'fwd' ? (M, N) => [ceilDiv(N, cols), ceilDiv(M, rows)] :
    dir === 'bwd_input' ? (M, _N, K) => [ceilDiv(K, cols), ceilDiv(M, rows)] :
    (_M, N, K) => [ceilDiv(K, cols), ceilDiv(N, rows)];
  return { kernel, constants: { WG: SUBGROUP_VEC.WG, ROWS: rows }, requires, grid };
}

/** Whether `mk` can run a product with this weight type, K and offsets (default 0). */
export function matmulKernelFits(mk: MatmulKernel, p: { wBf16: boolean; K: number; wOffset?: number; xOffset?: number }): boolean {
  const r = mk.requires;
  if (!r) return true;
  const offset = (r.offset === 'w_offset' ? p.wOffset : p.xOffset) ?? 0;
  return (r.wBf16 === undefined || p.wBf16 === r.wBf16) && p.K % r.kMultiple === 0 && offset % r.kMultiple === 0;
}

/**
 * Whether the subgroup kernels can run here: the device has the `subgroups` feature and its
 * subgroups have at least 8 invocations (the kernels broadcast from lanes 0..7). An adapter
 * that does not report its subgroup size is trusted (WebGPU implementations with subgroups use ≥ 8
 * on every desktop GPU and on lavapipe).
 */
export function canUseSubgroupMatmul(gpu: Gpu): boolean {
  const size = gpu.report.subgroupSize;
  return gpu.hasSubgroups && (size === null || size >= 8);
}

/**
 * The kernel variants of a direction this device can run, in their default tiles (the bench times
 * each); some only run some products (matmulKernelFits).
 */
export function matmulVariants(gpu: Gpu, dir: MatmulDirection): MatmulKernel[] {
  const variants = [matmulTiled(dir)];
  if (canUseSubgroupMatmul(gpu)) variants.push(matmulSubgroup(dir));
  if (canUseSubgroupMatmul(gpu)) variants.push(matmulSubgroupVec(dir));
  return variants;
}

export interface MatmulKernelOptions {
  /** Whether W is bf16 (fwd, bwd_input): picks the row count that suits the weight type. */
  wBf16?: boolean;
  /** The M of the products it will run, when known and small (decode: 1): caps the rows per workgroup. */
  rows?: number;
  /**
   * K (in features) of the products it will run, when known, with w_offset 0 and x_offset a
   * multiple of K (the Linear ops): bf16 W with K % 8 == 0 (fwd) or K % 4 == 0 (bwd_input), and
   * bwd_weight with K % 4 == 0, get the vector-load kernel.
   */
  K?: number;
}

/**
 * The kernel to use for a direction on this device: the subgroup variant when the device can run
 * it (2-4× faster than the tiled one on lavapipe), else the tiled one. Pass `wBf16` for weights
 * stored as bf16 and `rows` = M for small products (each distinct small M is one more pipeline).
 */
let warnedNoSubgroups = false;

export function matmulKernelFor(gpu: Gpu, dir: MatmulDirection, opts: MatmulKernelOptions = {}): MatmulKernel {
  if (!canUseSubgroupMatmul(gpu)) {
    // No silent fallbacks: the tiled kernels are correct everywhere but 2-6x slower on lavapipe.
    if (!warnedNoSubgroups) {
      warnedNoSubgroups = true;
      console.error(`wgpu-char: note: this device has no usable subgroups (size ${gpu.report.subgroupSize ?? 'unknown'}): matmuls use the slower shared-memory tiled kernels`);
    }
    return matmulTiled(dir);
  }
  if ((dir === 'bwd_weight' || opts.wBf16) && opts.K !== undefined) {
    const vec = matmulSubgroupVec(dir);
    if (matmulKernelFits(vec, { wBf16: opts.wBf16 === true, K: opts.K })) {
      return opts.rows === undefined ? vec : matmulSubgroupVec(dir, Math.max(1, Math.min(SUBGROUP_VEC.ROWS, Math.floor(opts.rows))));
    }
  }
  const defaultRows = opts.wBf16 && dir !== 'bwd_weight' ? SUBGROUP.ROWS_BF16 : SUBGROUP.ROWS;
  const rows = opts.rows === undefined ? defaultRows : Math.max(1, Math.min(defaultRows, Math.floor(opts.rows)));
  return matmulSubgroup(dir, rows);
}

/**
 * One matmul kernel bound once per row chunk of a weight (or of its gradient): chunk c covers rows
 * [rowStart, rowStart + rows) of W [N, K], i.e. the columns [rowStart, ...) of Y / dY, which the
 * Params express as y_offset + rowStart with row stride ldy = N. The three directions differ only
 * in kernel, constants and bindings.
 */
class ChunkedMatmul {
  private constructor(
    private readonly entry: ParamEntry,
    private readonly ops: Op[],
    private readonly grids: ((M: number) => [number, number])[],
  ) {}

  static async create(
    gpu: Gpu,
    entry: ParamEntry,
    k: MatmulKernel,
    chunkSpec: (c: ParamChunk, i: number) => { constants: OverrideConstants; bindings: Binding[]; label: string },
  ): Promise<ChunkedMatmul> {
    const ops: Op[] = [];
    const grids: ((M: number) => [number, number])[] = [];
    for (const [i, c] of entry.chunks.entries()) {
      const spec = chunkSpec(c, i);
      ops.push(await Op.create(gpu, { kernel: k.kernel, constants: { ...k.constants, ...spec.constants }, params: MATMUL_PARAMS, bindings: spec.bindings, label: spec.label }));
      grids.push((M) => k.grid(M, c.rows, entry.cols));
    }
    return new ChunkedMatmul(entry, ops, grids);
  }

  /** M = call.rows; X (or dX) from row call.inRow, Y (or dY) from row call.outRow (row stride N). */
  record(rec: Recorder, call: OpCall): void {
    const N = this.entry.rowsTotal;
    const K = this.entry.cols;
    const M = call.rows;
    const xOffset = (call.inRow ?? 0) * K;
    const yOffset = (call.outRow ?? 0) * N;
    this.entry.chunks.forEach((c, i) => {
      rec.dispatch(this.ops[i], matmulParams({ M, N: c.rows, K, xOffset, yOffset: yOffset + c.rowStart, ldy: N }), ...this.grids[i](M));
    });
  }
}

/**
 * Y[M, N] (= or +=) X[M, K] · Wᵀ for W [N, K] stored in row chunks. Reads rows, inRow (X), outRow
 * (Y). Two kernel configurations: the general one, and one for a single row (decode), which would
 * otherwise compute a block of idle rows.
 */
export class LinearOp implements ModelOp {
  private constructor(private readonly many: ChunkedMatmul, private readonly one: ChunkedMatmul) {}

  static async create(gpu: Gpu, w: WeightRef, x: GpuBuffer, y: GpuBuffer, accumulate: boolean): Promise<LinearOp> {
    const wBf16 = w.buffers.elem === 'bf16';
    const build = (rows?: number) =>
      ChunkedMatmul.create(gpu, w.entry, matmulKernelFor(gpu, 'fwd', { wBf16, rows, K: w.entry.cols }), (c) => ({
        constants: { W_BF16: wBf16, ACCUMULATE: accumulate },
        bindings: [x, w.buffers.binding(c), y],
        label: `${w.entry.spec.name}[${c.rowStart}:${c.rowStart + c.rows}]`,
      }));
    return new LinearOp(await build(), await build(1));
  }

  record(rec: Recorder, call: OpCall): void {
    (call.rows === 1 ? this.one : this.many).record(rec, call);
  }
}

/**
 * dX[M, K] (= or +=) dY[M, N] · W, summed over W's row chunks (the first chunk honours
 * `accumulate`, later ones add). Reads rows, inRow (dX), outRow (dY).
 */
export class LinearGradInputOp implements ModelOp {
  private constructor(private readonly mm: ChunkedMatmul) {}

  static async create(gpu: Gpu, w: WeightRef, dy: GpuBuffer, dx: GpuBuffer, accumulate: boolean): Promise<LinearGradInputOp> {
    const wBf16 = w.buffers.elem === 'bf16';
    const mm = await ChunkedMatmul.create(gpu, w.entry, matmulKernelFor(gpu, 'bwd_input', { wBf16, K: w.entry.cols }), (c, i) => ({
      constants: { W_BF16: wBf16, ACCUMULATE: accumulate || i > 0 },
      bindings: [dy, w.buffers.binding(c), dx],
      label: `dX:${w.entry.spec.name}[${c.rowStart}]`,
    }));
    return new LinearGradInputOp(mm);
  }

  record(rec: Recorder, call: OpCall): void {
    this.mm.record(rec, call);
  }
}

/** dW[N, K] += dY[M, N]ᵀ · X[M, K], per row chunk of the (f32) gradient. Reads rows, inRow (X), outRow (dY). */
export class LinearGradWeightOp implements ModelOp {
  private constructor(private readonly mm: ChunkedMatmul) {}

  static async create(gpu: Gpu, grad: WeightRef, dy: GpuBuffer, x: GpuBuffer): Promise<LinearGradWeightOp> {
    const mm = await ChunkedMatmul.create(gpu, grad.entry, matmulKernelFor(gpu, 'bwd_weight', { K: grad.entry.cols }), (c) => ({
      constants: { ACCUMULATE: true },
      bindings: [dy, x, grad.buffers.binding(c)],
      label: `dW:${grad.entry.spec.name}[${c.rowStart}]`,
    }));
    return new LinearGradWeightOp(mm);
  }

  record(rec: Recorder, call: OpCall): void {
    this.mm.record(rec, call);
  }
}
