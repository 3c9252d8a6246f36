/**
 * Causal GQA attention for independent query rows, each over its own KV-cache slot up to its own
 * position (kernels/attention_rows_fwd.wgsl; reference src/reference/attention_rows.ts): the
 * attention of continuous batching's rows (src/model/rows-forward.ts). Inference only: no LSE, no
 * backward.
 */
import type { GpuBuffer } from '../gpu/buffers.ts';
import type { Gpu } from '../gpu/device.ts';
import { Op, type Recorder } from '../gpu/kernels.ts';
import type { AttentionHeads } from './attention.ts';
import type { ModelOp, OpCall } from './op.ts';

/**
 * Threads per (row, head) of attention_rows_fwd.wgsl (its KS). On a GPU, 64: one query's keys fill
 * a workgroup, as attention_fwd's decode split. On lavapipe a workgroup of 64 runs as 8 SIMD passes
 * with costly merge barriers, and at short contexts most threads only pad their key block: 8
 * threads (one pass of its 8-wide SIMD) were 3-8× faster than 64 at weights/tiny's shapes (16 rows
 * at positions 30-250, medians of 9 runs). Fixed per device, never per step: a row's bits must
 * not depend on the batch.
 */
export function attentionRowsThreads(gpu: Gpu): number {
  return gpu.report.isSoftware ? 8 : 64;
}

/** out[r] = attention of q[r] over slot places[r].slot's keys 0 ..= places[r].pos, r < call.rows. Reads rows. */
export class AttentionRowsOp implements ModelOp {
  private constructor(private readonly op: Op, private readonly heads: AttentionHeads, private readonly Tmax: number) {}

  /** k, v: [slots, Tmax, nKV·hd] caches; q, out: [R, nH·hd]; places: [R] (slot, pos). */
  static async create(gpu: Gpu, heads: AttentionHeads, Tmax: number, b: { q: GpuBuffer; k: GpuBuffer; v: GpuBuffer; places: GpuBuffer; out: GpuBuffer }): Promise<AttentionRowsOp> {
    if (heads.hd > 128) throw new Error(`attention_rows: head dim ${heads.hd} > 128 (the kernel's MAX_HD)`);
    const KS = attentionRowsThreads(gpu);
    const op = await Op.create(gpu, { kernel: 'attention_rows_fwd.wgsl', constants: { KS }, params: 'uuuuuf', bindings: [b.q, b.k, b.v, b.places, b.out], label: `attention_rows:${b.k.label}` });
    return new AttentionRowsOp(op, heads, Tmax);
  }

  record(rec: Recorder, call: OpCall): void {
    const h = this.heads;
    rec.dispatch(this.op, [call.rows, this.Tmax, h.nH, h.nKV, h.hd, 1 / Math.sqrt(h.hd)], call.rows, h.nH);
  }
}
