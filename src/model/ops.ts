/**
 * Host-side wrappers of the forward kernels as the model uses them: each binds its buffers once
 * (one Op per weight chunk where a weight is split) and `record` sets sizes and dispatches.
 * The Params orders here mirror the kernels' headers in kernels/*.wgsl.
 */
import type { GpuBuffer } from '../gpu/buffers.ts';
import type { Gpu } from '../gpu/device.ts';
import { grid1d, Op, type Binding, type OverrideConstants, type Recorder } from '../gpu/kernels.ts';
import { MATMUL_PARAMS, matmulKernelFor, matmulParams, type MatmulKernel } from '../gpu/matmul.ts';
import type { ParamBuffers } from './param-buffers.ts';
import type { ParamChunk, ParamEntry } from './param-table.ts';

/** Threads per workgroup of the one-thread-per-element kernels (their WG override). */
export const ELEMENTWISE_WG = 256;

/** A parameter tensor and the buffers (role) it is read from. */
export interface WeightRef {
  entry: ParamEntry;
  buffers: ParamBuffers;
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

  /** M rows; X (or dX) at element xOffset, Y (or dY) at element yOffset with row stride ldy. */
  record(rec: Recorder, M: number, xOffset: number, yOffset: number, ldy: number): void {
    this.entry.chunks.forEach((c, i) => {
      const [gx, gy] = this.grids[i](M);
      rec.dispatch(this.ops[i], matmulParams({ M, N: c.rows, K: this.entry.cols, xOffset, yOffset: yOffset + c.rowStart, ldy }), gx, gy);
    });
  }
}

/**
 * Y[M, N] (= or +=) X[M, K] · Wᵀ for W [N, K] stored in row chunks. Two kernel configurations: the
 * general one, and one for a single row (decode), which would otherwise compute a block of idle rows.
 */
export class LinearOp {
  private constructor(private readonly many: ChunkedMatmul, private readonly one: ChunkedMatmul, private readonly w: WeightRef) {}

  get N(): number {
    return this.w.entry.rowsTotal;
  }

  static async create(gpu: Gpu, w: WeightRef, x: GpuBuffer, y: GpuBuffer, accumulate: boolean): Promise<LinearOp> {
    const wBf16 = w.buffers.elem === 'bf16';
    const build = (rows?: number) =>
      ChunkedMatmul.create(gpu, w.entry, matmulKernelFor(gpu, 'fwd', { wBf16, rows }), (c) => ({
        constants: { W_BF16: wBf16, ACCUMULATE: accumulate },
        bindings: [x, w.buffers.binding(c), y],
        label: `${w.entry.spec.name}[${c.rowStart}:${c.rowStart + c.rows}]`,
      }));
    return new LinearOp(await build(), await build(1), w);
  }

  /** M rows of X starting at element xOffset; Y written at element yOffset with row stride `ldy` (default N). */
  record(rec: Recorder, M: number, xOffset: number, yOffset: number, ldy = this.N): void {
    (M === 1 ? this.one : this.many).record(rec, M, xOffset, yOffset, ldy);
  }
}

/** y = rmsnorm(x) · w, saving rstd per row. */
export class RmsNormOp {
  private constructor(private readonly op: Op, private readonly cols: number, private readonly eps: number) {}

  static async create(gpu: Gpu, w: WeightRef, x: GpuBuffer, y: GpuBuffer, rstd: GpuBuffer, eps: number): Promise<RmsNormOp> {
    const op = await Op.create(gpu, {
      kernel: 'rmsnorm_fwd.wgsl',
      constants: { W_BF16: w.buffers.elem === 'bf16' },
      params: 'uuf',
      bindings: [x, w.buffers.binding(w.entry.chunks[0]), y, rstd],
      label: w.entry.spec.name,
    });
    return new RmsNormOp(op, w.entry.cols, eps);
  }

  record(rec: Recorder, rows: number): void {
    const [gx, gy] = grid1d(rows);
    rec.dispatch(this.op, [rows, this.cols, this.eps], gx, gy);
  }
}

export interface RopeDims {
  B: number;
  T: number;
  seqStride: number;
  rowOffset: number;
  pos0: number;
  nHeads: number;
  hd: number;
}

/** In-place rotate-half RoPE on rows of `buf`. */
export class RopeOp {
  private constructor(private readonly op: Op) {}

  /** 'fwd' rotates activations (rope_fwd.wgsl); 'bwd' rotates their gradient back (rope_bwd.wgsl). */
  static async create(gpu: Gpu, buf: GpuBuffer, cos: GpuBuffer, sin: GpuBuffer, dir: 'fwd' | 'bwd' = 'fwd'): Promise<RopeOp> {
    return new RopeOp(await Op.create(gpu, { kernel: `rope_${dir}.wgsl`, constants: { WG: ELEMENTWISE_WG }, params: 'uuuuuuu', bindings: [buf, cos, sin], label: `rope_${dir}:${buf.label}` }));
  }

  record(rec: Recorder, d: RopeDims): void {
    const pairs = d.B * d.T * d.nHeads * (d.hd / 2);
    const [gx, gy] = grid1d(Math.ceil(pairs / ELEMENTWISE_WG));
    rec.dispatch(this.op, [d.B, d.T, d.seqStride, d.rowOffset, d.pos0, d.nHeads, d.hd], gx, gy);
  }
}

export interface AttentionDims {
  B: number;
  T: number;
  Tmax: number;
  pos0: number;
  nH: number;
  nKV: number;
  hd: number;
}

/**
 * Tile shapes of the attention kernels (see their headers). Many queries (training, prefill):
 * a workgroup takes QB·QR queries; on lavapipe every load is a per-lane gather, so each thread
 * takes QR = 4 query rows to reuse each key load 4 times (3-4× faster there); on a GPU one row per
 * thread and 64 threads. One query (decode): the keys are split over a 64-thread workgroup.
 */
export function attentionTiles(gpu: Gpu) {
  const software = gpu.report.isSoftware;
  return {
    many: software ? { QB: 8, QR: 4, KS: 1 } : { QB: 64, QR: 1, KS: 1 },
    one: { QB: 1, QR: 1, KS: 64 },
    dq: software ? { QB: 8, QR: 4 } : { QB: 64, QR: 1 },
    dkv: software ? { SB: 8, SR: 4 } : { SB: 64, SR: 1 },
  };
}

/** Causal flash attention with GQA over the KV cache; saves LSE (kernels/attention_fwd.wgsl). */
export class AttentionOp {
  private constructor(
    private readonly many: Op,
    private readonly one: Op,
    private readonly tiles: ReturnType<typeof attentionTiles>,
  ) {}

  static async create(gpu: Gpu, q: GpuBuffer, k: GpuBuffer, v: GpuBuffer, out: GpuBuffer, lse: GpuBuffer): Promise<AttentionOp> {
    const tiles = attentionTiles(gpu);
    const make = (constants: Record<string, number>) =>
      Op.create(gpu, { kernel: 'attention_fwd.wgsl', constants, params: 'uuuuuuuf', bindings: [q, k, v, out, lse], label: `attention:${k.label}` });
    return new AttentionOp(await make(tiles.many), await make(tiles.one), tiles);
  }

  record(rec: Recorder, d: AttentionDims): void {
    const single = d.T === 1;
    const op = single ? this.one : this.many;
    const t = single ? this.tiles.one : this.tiles.many;
    rec.dispatch(op, [d.B, d.T, d.Tmax, d.pos0, d.nH, d.nKV, d.hd, 1 / Math.sqrt(d.hd)], Math.ceil(d.T / (t.QB * t.QR)), d.nH, d.B);
  }
}

/** h = silu(g) ∘ u. */
export class SwiGluOp {
  private constructor(private readonly op: Op) {}

  static async create(gpu: Gpu, g: GpuBuffer, u: GpuBuffer, h: GpuBuffer): Promise<SwiGluOp> {
    return new SwiGluOp(await Op.create(gpu, { kernel: 'swiglu_fwd.wgsl', constants: { WG: ELEMENTWISE_WG }, params: 'u', bindings: [g, u, h], label: 'swiglu' }));
  }

  record(rec: Recorder, n: number): void {
    const [gx, gy] = grid1d(Math.ceil(n / ELEMENTWISE_WG));
    rec.dispatch(this.op, [n], gx, gy);
  }
}

/** x[r] = E[ids[r]] over the embedding's row chunks. */
export class EmbeddingOp {
  private constructor(private readonly ops: Op[], private readonly w: WeightRef) {}

  static async create(gpu: Gpu, w: WeightRef, ids: GpuBuffer, x: GpuBuffer): Promise<EmbeddingOp> {
    const ops: Op[] = [];
    for (const c of w.entry.chunks) {
      ops.push(
        await Op.create(gpu, {
          kernel: 'embedding_fwd.wgsl',
          constants: { W_BF16: w.buffers.elem === 'bf16', WG: ELEMENTWISE_WG },
          params: 'uuuu',
          bindings: [ids, w.buffers.binding(c), x],
          label: `embed[${c.rowStart}]`,
        }),
      );
    }
    return new EmbeddingOp(ops, w);
  }

  record(rec: Recorder, rows: number): void {
    const H = this.w.entry.cols;
    this.w.entry.chunks.forEach((c, i) => {
      const [gx, gy] = grid1d(Math.ceil((rows * H) / ELEMENTWISE_WG));
      rec.dispatch(this.ops[i], [rows, H, c.rowStart, c.rows], gx, gy);
    });
  }
}

/** probs[r] = softmax(logits[r] · invTemperature) for rows of a [R, V] logits buffer. */
export class SoftmaxOp {
  private constructor(private readonly op: Op) {}

  static async create(gpu: Gpu, logits: GpuBuffer, probs: GpuBuffer): Promise<SoftmaxOp> {
    return new SoftmaxOp(await Op.create(gpu, { kernel: 'softmax_fwd.wgsl', params: 'uuuf', bindings: [logits, probs], label: 'softmax' }));
  }

  record(rec: Recorder, rows: number, V: number, logitsOffset: number, invTemperature: number): void {
    const [gx, gy] = grid1d(rows);
    rec.dispatch(this.op, [rows, V, logitsOffset, invTemperature], gx, gy);
  }
}

/** HF repetition penalty on one row of logits, in place, for a list of distinct token ids (kernels/repetition_penalty_fwd.wgsl). */
export class RepetitionPenaltyOp {
  static readonly WG = 64;
  private constructor(private readonly op: Op) {}

  static async create(gpu: Gpu, ids: GpuBuffer, logits: GpuBuffer): Promise<RepetitionPenaltyOp> {
    return new RepetitionPenaltyOp(await Op.create(gpu, { kernel: 'repetition_penalty_fwd.wgsl', constants: { WG: RepetitionPenaltyOp.WG }, params: 'uuuf', bindings: [ids, logits], label: 'repetition_penalty' }));
  }

  record(rec: Recorder, count: number, V: number, logitsOffset: number, penalty: number): void {
    const [gx, gy] = grid1d(Math.ceil(count / RepetitionPenaltyOp.WG));
    rec.dispatch(this.op, [count, V, logitsOffset, penalty], gx, gy);
  }
}

/**
 * Per-row cross-entropy against `targets` (-1 = no loss) over a chunk of logits rows; with
 * `writeGrad` the logits are overwritten in place by dlogits · gradScale.
 */
export class CrossEntropyOp {
  private constructor(private readonly op: Op) {}

  static async create(gpu: Gpu, logits: GpuBuffer, targets: GpuBuffer, loss: GpuBuffer, writeGrad: boolean): Promise<CrossEntropyOp> {
    return new CrossEntropyOp(
      await Op.create(gpu, {
        kernel: 'cross_entropy_fwd_bwd.wgsl',
        constants: { WRITE_GRAD: writeGrad },
        params: 'uuuuf',
        bindings: [logits, targets, loss],
        label: 'cross_entropy',
      }),
    );
  }

  record(rec: Recorder, rows: number, V: number, logitsOffset: number, targetOffset: number, gradScale: number): void {
    const [gx, gy] = grid1d(rows);
    rec.dispatch(this.op, [rows, V, logitsOffset, targetOffset, gradScale], gx, gy);
  }
}

// ---------------------------------------------------------------------------------------------
// Backward wrappers (training). Each mirrors its forward above; see the kernels' headers.
// ---------------------------------------------------------------------------------------------

/** dX[M, K] (= or +=) dY[M, N] · W, summed over W's row chunks (the first chunk honours `accumulate`, later ones add). */
export class LinearGradInputOp {
  private constructor(private readonly mm: ChunkedMatmul, private readonly N: number) {}

  static async create(gpu: Gpu, w: WeightRef, dy: GpuBuffer, dx: GpuBuffer, accumulate: boolean): Promise<LinearGradInputOp> {
    const wBf16 = w.buffers.elem === 'bf16';
    const mm = await ChunkedMatmul.create(gpu, w.entry, matmulKernelFor(gpu, 'bwd_input', { wBf16 }), (c, i) => ({
      constants: { W_BF16: wBf16, ACCUMULATE: accumulate || i > 0 },
      bindings: [dy, w.buffers.binding(c), dx],
      label: `dX:${w.entry.spec.name}[${c.rowStart}]`,
    }));
    return new LinearGradInputOp(mm, w.entry.rowsTotal);
  }

  /** dY rows at element yOffset with row stride ldy (default N); dX at element xOffset (row stride K). */
  record(rec: Recorder, M: number, xOffset: number, yOffset: number, ldy = this.N): void {
    this.mm.record(rec, M, xOffset, yOffset, ldy);
  }
}

/** dW[N, K] += dY[M, N]ᵀ · X[M, K], per row chunk of the (f32) gradient. */
export class LinearGradWeightOp {
  private constructor(private readonly mm: ChunkedMatmul, private readonly N: number) {}

  static async create(gpu: Gpu, grad: WeightRef, dy: GpuBuffer, x: GpuBuffer): Promise<LinearGradWeightOp> {
    const mm = await ChunkedMatmul.create(gpu, grad.entry, matmulKernelFor(gpu, 'bwd_weight'), (c) => ({
      constants: { ACCUMULATE: true },
      bindings: [dy, x, grad.buffers.binding(c)],
      label: `dW:${grad.entry.spec.name}[${c.rowStart}]`,
    }));
    return new LinearGradWeightOp(mm, grad.entry.rowsTotal);
  }

  /** dY rows at element yOffset with row stride ldy (default N); X at element xOffset. */
  record(rec: Recorder, M: number, xOffset: number, yOffset: number, ldy = this.N): void {
    this.mm.record(rec, M, xOffset, yOffset, ldy);
  }
}

/** dx (+= or =) RMSNorm input gradient and dw += weight gradient (owner-computes kernel). */
export class RmsNormBackwardOp {
  private constructor(private readonly input: Op, private readonly weight: Op, private readonly cols: number) {}

  /** `w` must be the weight the forward read (bf16 or f32), so dx is the exact gradient of the forward that ran. */
  static async create(gpu: Gpu, w: WeightRef, gradW: WeightRef, dy: GpuBuffer, x: GpuBuffer, rstd: GpuBuffer, dx: GpuBuffer, accumulate: boolean): Promise<RmsNormBackwardOp> {
    const input = await Op.create(gpu, {
      kernel: 'rmsnorm_bwd.wgsl',
      constants: { ACCUMULATE: accumulate, W_BF16: w.buffers.elem === 'bf16' },
      params: 'uu',
      bindings: [dy, x, w.buffers.binding(w.entry.chunks[0]), rstd, dx],
      label: `rmsnorm_bwd:${w.entry.spec.name}`,
    });
    const weight = await Op.create(gpu, {
      kernel: 'rmsnorm_bwd_weight.wgsl',
      constants: { ACCUMULATE: true, COLS: 64 },
      params: 'uu',
      bindings: [dy, x, rstd, gradW.buffers.binding(gradW.entry.chunks[0])],
      label: `rmsnorm_bwd_weight:${gradW.entry.spec.name}`,
    });
    return new RmsNormBackwardOp(input, weight, w.entry.cols);
  }

  record(rec: Recorder, rows: number): void {
    const [gx, gy] = grid1d(rows);
    rec.dispatch(this.input, [rows, this.cols], gx, gy);
    const [wx, wy] = grid1d(Math.ceil(this.cols / 64));
    rec.dispatch(this.weight, [rows, this.cols], wx, wy);
  }
}

/** dg, du from dh (h = silu(g) ∘ u). */
export class SwiGluBackwardOp {
  private constructor(private readonly op: Op) {}

  static async create(gpu: Gpu, dh: GpuBuffer, g: GpuBuffer, u: GpuBuffer, dg: GpuBuffer, du: GpuBuffer): Promise<SwiGluBackwardOp> {
    return new SwiGluBackwardOp(await Op.create(gpu, { kernel: 'swiglu_bwd.wgsl', constants: { WG: ELEMENTWISE_WG }, params: 'u', bindings: [dh, g, u, dg, du], label: 'swiglu_bwd' }));
  }

  record(rec: Recorder, n: number): void {
    const [gx, gy] = grid1d(Math.ceil(n / ELEMENTWISE_WG));
    rec.dispatch(this.op, [n], gx, gy);
  }
}

/** Flash-attention backward: D = rowsum(dO∘O), then dQ, then dK/dV (three owner-computes passes). */
export class AttentionBackwardOp {
  static readonly PREP_WG = 64;
  private constructor(private readonly prep: Op, private readonly dq: Op, private readonly dkv: Op, private readonly tiles: ReturnType<typeof attentionTiles>) {}

  static async create(
    gpu: Gpu,
    b: { q: GpuBuffer; k: GpuBuffer; v: GpuBuffer; o: GpuBuffer; lse: GpuBuffer; dout: GpuBuffer; dsum: GpuBuffer; dq: GpuBuffer; dk: GpuBuffer; dv: GpuBuffer },
  ): Promise<AttentionBackwardOp> {
    const tiles = attentionTiles(gpu);
    const prep = await Op.create(gpu, { kernel: 'attention_bwd_prep.wgsl', constants: { WG: AttentionBackwardOp.PREP_WG }, params: 'uuu', bindings: [b.o, b.dout, b.dsum], label: 'attention_bwd_prep' });
    const dq = await Op.create(gpu, { kernel: 'attention_bwd_dq.wgsl', constants: tiles.dq, params: 'uuuuuuuf', bindings: [b.q, b.k, b.v, b.dout, b.lse, b.dsum, b.dq], label: 'attention_bwd_dq' });
    const dkv = await Op.create(gpu, { kernel: 'attention_bwd_dkv.wgsl', constants: tiles.dkv, params: 'uuuuuuuf', bindings: [b.q, b.k, b.v, b.dout, b.lse, b.dsum, b.dk, b.dv], label: 'attention_bwd_dkv' });
    return new AttentionBackwardOp(prep, dq, dkv, tiles);
  }

  record(rec: Recorder, d: AttentionDims): void {
    const rows = d.B * d.T;
    const [px, py] = grid1d(Math.ceil((rows * d.nH) / AttentionBackwardOp.PREP_WG));
    rec.dispatch(this.prep, [rows, d.nH, d.hd], px, py);
    const p = [d.B, d.T, d.Tmax, d.pos0, d.nH, d.nKV, d.hd, 1 / Math.sqrt(d.hd)];
    rec.dispatch(this.dq, p, Math.ceil(d.T / (this.tiles.dq.QB * this.tiles.dq.QR)), d.nH, d.B);
    rec.dispatch(this.dkv, p, Math.ceil(d.Tmax / (this.tiles.dkv.SB * this.tiles.dkv.SR)), d.nKV, d.B);
  }
}

/** dE += scatter of dx rows by token id, per vocab chunk (CSR built on the CPU). */
export class EmbeddingBackwardOp {
  private constructor(private readonly ops: Op[], private readonly grad: WeightRef) {}

  static async create(gpu: Gpu, grad: WeightRef, dx: GpuBuffer, uniq: GpuBuffer, starts: GpuBuffer, rows: GpuBuffer): Promise<EmbeddingBackwardOp> {
    const ops: Op[] = [];
    for (const c of grad.entry.chunks) {
      ops.push(await Op.create(gpu, { kernel: 'embedding_bwd.wgsl', params: 'uuuu', bindings: [dx, uniq, starts, rows, grad.buffers.binding(c)], label: `embedding_bwd[${c.rowStart}]` }));
    }
    return new EmbeddingBackwardOp(ops, grad);
  }

  record(rec: Recorder, uniqueCount: number): void {
    this.grad.entry.chunks.forEach((c, i) => {
      const [gx, gy] = grid1d(uniqueCount);
      rec.dispatch(this.ops[i], [uniqueCount, this.grad.entry.cols, c.rowStart, c.rows], gx, gy);
    });
  }
}

/** out[outOffset] (+= or =) scale · Σ x[0..n) in one workgroup (n up to a few thousand rows). */
export class SumOp {
  private constructor(private readonly op: Op) {}

  static async create(gpu: Gpu, x: GpuBuffer, out: GpuBuffer, accumulate: boolean): Promise<SumOp> {
    return new SumOp(await Op.create(gpu, { kernel: 'sum_fwd.wgsl', constants: { ACCUMULATE: accumulate }, params: 'uuuuf', bindings: [x, out], label: 'sum' }));
  }

  record(rec: Recorder, n: number, outOffset: number, scale: number): void {
    rec.dispatch(this.op, [n, 0, outOffset, Math.max(n, 1), scale], 1);
  }
}
