/**
 * RMSNorm (kernels/rmsnorm_fwd.wgsl, rmsnorm_bwd.wgsl, rmsnorm_bwd_weight.wgsl; reference
 * src/reference/rmsnorm.ts). Both read only call.rows.
 */
import type { GpuBuffer } from '../gpu/buffers.ts';
import type { Gpu } from '../gpu/device.ts';
import { grid1d, Op, type Recorder } from '../gpu/kernels.ts';
import type { ModelOp, OpCall, WeightRef } from './op.ts';

/** y = rmsnorm(x) · w, saving rstd per row. */
export class RmsNormOp implements ModelOp {
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

  record(rec: Recorder, call: OpCall): void {
    rec.dispatch(this.op, [call.rows, this.cols, this.eps], ...grid1d(call.rows));
  }
}

/** Threads (columns) per workgroup of rmsnorm_bwd_weight.wgsl. */
const WEIGHT_COLS = 64;

/** dx (+= or =) RMSNorm input gradient and dw += weight gradient (owner-computes kernel; none for a frozen weight). */
export class RmsNormBackwardOp implements ModelOp {
  private constructor(private readonly input: Op, private readonly weight: Op | null, private readonly cols: number) {}

  /**
   * `w` must be the weight the forward read (bf16 or f32), so dx is the exact gradient of the
   * forward that ran. `gradW` null: the weight is frozen (LoRA), only dx is computed.
   */
  static async create(gpu: Gpu, w: WeightRef, gradW: WeightRef | null, dy: GpuBuffer, x: GpuBuffer, rstd: GpuBuffer, dx: GpuBuffer, accumulate: boolean): Promise<RmsNormBackwardOp> {
    const input = await Op.create(gpu, {
      kernel: 'rmsnorm_bwd.wgsl',
      constants: { ACCUMULATE: accumulate, W_BF16: w.buffers.elem === 'bf16' },
      params: 'uu',
      bindings: [dy, x, w.buffers.binding(w.entry.chunks[0]), rstd, dx],
      label: `rmsnorm_bwd:${w.entry.spec.name}`,
    });
    if (!gradW) return new RmsNormBackwardOp(input, null, w.entry.cols);
    const weight = await Op.create(gpu, {
      kernel: 'rmsnorm_bwd_weight.wgsl',
      constants: { ACCUMULATE: true, COLS: WEIGHT_COLS },
      params: 'uu',
      bindings: [dy, x, rstd, gradW.buffers.binding(gradW.entry.chunks[0])],
      label: `rmsnorm_bwd_weight:${gradW.entry.spec.name}`,
    });
    return new RmsNormBackwardOp(input, weight, w.entry.cols);
  }

  record(rec: Recorder, call: OpCall): void {
    rec.dispatch(this.input, [call.rows, this.cols], ...grid1d(call.rows));
    if (this.weight) rec.dispatch(this.weight, [call.rows, this.cols], ...grid1d(Math.ceil(this.cols / WEIGHT_COLS)));
  }
}
