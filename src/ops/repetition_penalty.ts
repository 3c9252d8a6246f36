/** HF repetition penalty on one row of logits, in place (kernels/repetition_penalty_fwd.wgsl; reference src/reference/repetition_penalty.ts). */
import type { GpuBuffer } from '../gpu/buffers.ts';
import type { Gpu } from '../gpu/device.ts';
import { grid1d, Op, type Recorder } from '../gpu/kernels.ts';
import type { ModelOp, OpCall } from './op.ts';

/** Threads per workgroup (one distinct id each). */
const WG = 64;

/**
 * Penalises by call.scale the logits (row call.outRow, in place) of the call.rows distinct ids of
 * `ids` from element call.inRow (the ids are the op's input rows).
 */
export class RepetitionPenaltyOp implements ModelOp {
  private constructor(private readonly op: Op, private readonly V: number) {}

  static async create(gpu: Gpu, V: number, ids: GpuBuffer, logits: GpuBuffer): Promise<RepetitionPenaltyOp> {
    return new RepetitionPenaltyOp(await Op.create(gpu, { kernel: 'repetition_penalty_fwd.wgsl', constants: { WG }, params: 'uuuuf', bindings: [ids, logits], label: 'repetition_penalty' }), V);
  }

  record(rec: Recorder, call: OpCall): void {
    if (call.scale === undefined) throw new Error('repetition penalty: call.scale (the penalty) is required');
    rec.dispatch(this.op, [call.rows, this.V, call.inRow ?? 0, (call.outRow ?? 0) * this.V, call.scale], ...grid1d(Math.ceil(call.rows / WG)));
  }
}
