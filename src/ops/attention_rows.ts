/**
 * Causal GQA attention for independent query rows, each over its own KV-cache slot up to its own
 * position (kernels/attention_rows_fwd.wgsl; reference src/reference/attention_rows.ts): the
 * attention of continuous batching's rows (src/model/rows-forward.ts). Inference only: no LSE, no
 * backward.
 */
import type { GpuBuffer } from '../gpu/buffers.ts';
import type { Gpu } from '../gpu/device.ts';
import { Op, type Recorder } from '../gpu/kernels.ts';
import { attentionTiles, type AttentionHeads } from './attention.ts';
import type { ModelOp, OpCall } from './op.ts';

/** out[r] = attention of q[r] over slot places[r].slot's keys 0 ..= places[r].pos, r < call.rows. Reads rows. */
export class AttentionRowsOp implements ModelOp {
  private constructor(private readonly op: Op, private readonly heads: AttentionHeads, private readonly Tmax: number) {}

  /** k, v: [slots, Tmax, nKV·hd] caches; q, out: [R, nH·hd]; places: [R] (slot, pos). */
  static async create(gpu: Gpu, heads: AttentionHeads, Tmax: number, b: { q: GpuBuffer; k: GpuBuffer; v: GpuBuffer; places: GpuBuffer; out: GpuBuffer }): Promise<AttentionRowsOp> {
    if (heads.hd > 128) throw new Error(`attention_rows: head dim ${heads.hd} > 128 (the kernel's MAX_HD)`);
    // The keys of one row spread over a workgroup, as attention_fwd's decode split (one query).
    const { KS } = attentionTiles(gpu).one;
    const op = await Op.create(gpu, { kernel: 'attention_rows_fwd.wgsl', constants: { KS }, params: 'uuuuuf', bindings: [b.q, b.k, b.v, b.places, b.out], label: `attention_rows:${b.k.label}` });
    return new AttentionRowsOp(op, heads, Tmax);
  }

  record(rec: Recorder, call: OpCall): void {
    const h = this.heads;
    rec.dispatch(this.op, [call.rows, this.Tmax, h.nH, h.nKV, h.hd, 1 / Math.sqrt(h.hd)], call.rows, h.nH);
  }
}
