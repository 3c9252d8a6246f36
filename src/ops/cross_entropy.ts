/**
 * Per-row cross-entropy, forward and backward in one kernel (kernels/cross_entropy_fwd_bwd.wgsl;
 * reference src/reference/cross_entropy.ts).
 */
import type { GpuBuffer } from '../gpu/buffers.ts';
import type { Gpu } from '../gpu/device.ts';
import { grid1d, Op, type Recorder } from '../gpu/kernels.ts';
import type { ModelOp, OpCall } from './op.ts';

/**
 * loss[outRow + r] = CE(logits[inRow + r], targets[outRow + r]) (-1 = no loss) over call.rows rows
 * of V; with `writeGrad` the logits are overwritten in place by dlogits · call.scale.
 */
export class CrossEntropyOp implements ModelOp {
  private constructor(private readonly op: Op, private readonly V: number) {}

  static async create(gpu: Gpu, V: number, logits: GpuBuffer, targets: GpuBuffer, loss: GpuBuffer, writeGrad: boolean): Promise<CrossEntropyOp> {
    const op = await Op.create(gpu, { kernel: 'cross_entropy_fwd_bwd.wgsl', constants: { WRITE_GRAD: writeGrad }, params: 'uuuuf', bindings: [logits, targets, loss], label: 'cross_entropy' });
    return new CrossEntropyOp(op, V);
  }

  record(rec: Recorder, call: OpCall): void {
    rec.dispatch(this.op, [call.rows, this.V, (call.inRow ?? 0) * this.V, call.outRow ?? 0, call.scale ?? 1], ...grid1d(call.rows));
  }
}
