/** Softmax with temperature over rows of logits (kernels/softmax_fwd.wgsl; reference src/reference/softmax.ts). */
import type { GpuBuffer } from '../gpu/buffers.ts';
import type { Gpu } from '../gpu/device.ts';
import { grid1d, Op, type Recorder } from '../gpu/kernels.ts';
import type { ModelOp, OpCall } from './op.ts';

/** probs[outRow + r] = softmax(logits[inRow + r] · scale) for rows of V; call.scale = 1/temperature (default 1). */
export class SoftmaxOp implements ModelOp {
  private constructor(private readonly op: Op, private readonly V: number) {}

  static async create(gpu: Gpu, V: number, logits: GpuBuffer, probs: GpuBuffer): Promise<SoftmaxOp> {
    return new SoftmaxOp(await Op.create(gpu, { kernel: 'softmax_fwd.wgsl', params: 'uuuuf', bindings: [logits, probs], label: 'softmax' }), V);
  }

  record(rec: Recorder, call: OpCall): void {
    rec.dispatch(this.op, [call.rows, this.V, (call.inRow ?? 0) * this.V, (call.outRow ?? 0) * this.V, call.scale ?? 1], ...grid1d(call.rows));
  }
}
