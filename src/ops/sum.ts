/** Deterministic sum of a buffer (kernels/sum_fwd.wgsl). */
import type { GpuBuffer } from '../gpu/buffers.ts';
import type { Gpu } from '../gpu/device.ts';
import { Op, type Recorder } from '../gpu/kernels.ts';
import type { ModelOp, OpCall } from './op.ts';

/** out[outRow] (+= or =) scale · Σ x[inRow .. inRow + rows) in one workgroup (up to a few thousand rows). */
export class SumOp implements ModelOp {
  private constructor(private readonly op: Op) {}

  static async create(gpu: Gpu, x: GpuBuffer, out: GpuBuffer, accumulate: boolean): Promise<SumOp> {
    return new SumOp(await Op.create(gpu, { kernel: 'sum_fwd.wgsl', constants: { ACCUMULATE: accumulate }, params: 'uuuuf', bindings: [x, out], label: 'sum' }));
  }

  record(rec: Recorder, call: OpCall): void {
    rec.dispatch(this.op, [call.rows, call.inRow ?? 0, call.outRow ?? 0, Math.max(call.rows, 1), call.scale ?? 1], 1);
  }
}
