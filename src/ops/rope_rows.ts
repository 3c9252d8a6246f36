/**
 * Rotate-half RoPE in place on dense rows that each sit at their own position
 * (kernels/rope_rows_fwd.wgsl; reference src/reference/rope_rows.ts): the queries and new keys of
 * continuous batching's independent rows (src/model/rows-forward.ts). Inference only: no backward.
 */
import type { GpuBuffer } from '../gpu/buffers.ts';
import type { Gpu } from '../gpu/device.ts';
import { grid1d, Op, type Recorder } from '../gpu/kernels.ts';
import { ELEMENTWISE_WG, type ModelOp, type OpCall } from './op.ts';

/** Rotates rows 0 .. call.rows of `buf` [R, nHeads·hd], row r at position places[r].pos. Reads rows. */
export class RopeRowsOp implements ModelOp {
  private constructor(private readonly op: Op, private readonly nHeads: number, private readonly hd: number) {}

  static async create(gpu: Gpu, buf: GpuBuffer, table: { cos: GpuBuffer; sin: GpuBuffer }, places: GpuBuffer, heads: { nHeads: number; hd: number }): Promise<RopeRowsOp> {
    const op = await Op.create(gpu, { kernel: 'rope_rows_fwd.wgsl', constants: { WG: ELEMENTWISE_WG }, params: 'uuu', bindings: [buf, table.cos, table.sin, places], label: `rope_rows:${buf.label}` });
    return new RopeRowsOp(op, heads.nHeads, heads.hd);
  }

  record(rec: Recorder, call: OpCall): void {
    const pairs = call.rows * this.nHeads * (this.hd / 2);
    rec.dispatch(this.op, [call.rows, this.nHeads, this.hd], ...grid1d(Math.ceil(pairs / ELEMENTWISE_WG)));
  }
}
