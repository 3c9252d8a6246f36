/**
 * Rotate-half RoPE in place (kernels/rope_fwd.wgsl, rope_bwd.wgsl; reference src/reference/rope.ts;
 * table from src/model/rope-table.ts). Reads B, T, pos0 and kvStride.
 */
import type { GpuBuffer } from '../gpu/buffers.ts';
import type { Gpu } from '../gpu/device.ts';
import { grid1d, Op, type Recorder } from '../gpu/kernels.ts';
import { ELEMENTWISE_WG, sequences, type ModelOp, type OpCall } from './op.ts';

/**
 * Where the rotated rows sit: 'rows' = B·T dense rows (queries, and every gradient);
 * 'cache' = rows pos0.. of each sequence of a K buffer with kvStride rows per sequence.
 */
export type RopeLayout = 'rows' | 'cache';

/** 'fwd' rotates activations (rope_fwd.wgsl); 'bwd' rotates their gradient back (rope_bwd.wgsl). */
export class RopeOp implements ModelOp {
  private constructor(private readonly op: Op, private readonly nHeads: number, private readonly hd: number, private readonly layout: RopeLayout) {}

  static async create(
    gpu: Gpu,
    buf: GpuBuffer,
    table: { cos: GpuBuffer; sin: GpuBuffer },
    heads: { nHeads: number; hd: number; layout: RopeLayout },
    dir: 'fwd' | 'bwd' = 'fwd',
  ): Promise<RopeOp> {
    const op = await Op.create(gpu, { kernel: `rope_${dir}.wgsl`, constants: { WG: ELEMENTWISE_WG }, params: 'uuuuuuu', bindings: [buf, table.cos, table.sin], label: `rope_${dir}:${buf.label}` });
    return new RopeOp(op, heads.nHeads, heads.hd, heads.layout);
  }

  record(rec: Recorder, call: OpCall): void {
    const { B, T, pos0, kvStride } = sequences(call, 'rope');
    const [seqStride, rowOffset] = this.layout === 'cache' ? [kvStride, pos0] : [T, 0];
    const pairs = B * T * this.nHeads * (this.hd / 2);
    rec.dispatch(this.op, [B, T, seqStride, rowOffset, pos0, this.nHeads, this.hd], ...grid1d(Math.ceil(pairs / ELEMENTWISE_WG)));
  }
}
