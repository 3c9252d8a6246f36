/** Softmax with temperature over rows of logits (kernels/softmax_fwd.wgsl; reference src/reference/softmax.ts). */
import type { GpuBuffer } from '../gpu/buffers.ts';
import type { Gpu } from '../gpu/device.ts';
import { grid1d, Op, type Recorder } from '../gpu/kernels.ts';
import type { ModelOp, OpCall } from './op.ts';

/**
 * Threads per row of softmax_fwd.wgsl (its WG). On a GPU 256. On lavapipe a workgroup runs as
 * passes of its 8-wide SIMD loop and each of the tree reduction's barriers switches between them:
 * 8 threads (one pass) took 425 µs for 16 rows of V = 4000 against 596 µs for 256, 34 vs 50 µs for
 * one row (weights/tiny's step, medians of 5 interleaved runs). Three sweeps (max; exp and sum;
 * rescale) instead of the online max-and-sum were slower there (each load costs more than an exp).
 * A row's result does not depend on the other rows whatever the choice.
 */
export function softmaxThreads(gpu: Gpu): number {
  return gpu.report.isSoftware ? 8 : 256;
}

/** probs[outRow + r] = softmax(logits[inRow + r] · scale) for rows of V; call.scale = 1/temperature (default 1). */
export class SoftmaxOp implements ModelOp {
  private constructor(private readonly op: Op, private readonly V: number) {}

  static async create(gpu: Gpu, V: number, logits: GpuBuffer, probs: GpuBuffer): Promise<SoftmaxOp> {
    return new SoftmaxOp(await Op.create(gpu, { kernel: 'softmax_fwd.wgsl', constants: { WG: softmaxThreads(gpu) }, params: 'uuuuf', bindings: [logits, probs], label: 'softmax' }), V);
  }

  record(rec: Recorder, call: OpCall): void {
    rec.dispatch(this.op, [call.rows, this.V, (call.inRow ?? 0) * this.V, (call.outRow ?? 0) * this.V, call.scale ?? 1], ...grid1d(call.rows));
  }
}
