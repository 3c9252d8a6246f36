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
 * The most query heads of one kv group a thread of attention_rows_fwd.wgsl can take (its QH): a
 * divisor of nH / nKV with QH·hd <= 128 (its per-thread q and acc arrays) and QH <= 16.
 */
export function attentionRowsMaxHeads(heads: AttentionHeads): number {
  let best = 1;
  for (let qh = 1; qh <= Math.min(heads.nH / heads.nKV, 16); qh++) if ((heads.nH / heads.nKV) % qh === 0 && qh * heads.hd <= 128) best = qh;
  return best;
}

/**
 * Work split of attention_rows_fwd.wgsl (its KS threads, QH heads a thread; see its header), fixed
 * per device and model, never per step: a row's bits must not depend on the batch.
 *
 * On a GPU, the decode split of attention_fwd: 64 threads over one query's keys, one head each.
 * On lavapipe a workgroup of 64 runs as 8 passes of its 8-wide SIMD with costly merge barriers,
 * and every load is a per-lane gather, so: 8 threads (one SIMD pass), each over all the heads of
 * a kv group (each K/V element loaded once for them, not once a head). At weights/tiny's shapes
 * (positions ~100; scratch op times, medians of 5 interleaved runs on a busy 2-core machine): 754
 * µs a dispatch for 8 threads a head (the previous split) vs 519 at 16 rows, 80 vs 44 at 1 row;
 * in a kernel-only sweep 4 threads over 2 heads were 10-15% slower than 8, 2 threads 2× slower,
 * and fixing the head dim at build, vec4 loads, or skipping the padded keys' loads were no faster.
 */
export function attentionRowsSplit(gpu: Gpu, heads: AttentionHeads): { KS: number; QH: number } {
  return gpu.report.isSoftware ? { KS: 8, QH: attentionRowsMaxHeads(heads) } : { KS: 64, QH: 1 };
}

/** out[r] = attention of q[r] over slot places[r].slot's keys 0 ..= places[r].pos, r < call.rows. Reads rows. */
export class AttentionRowsOp implements ModelOp {
  private constructor(private readonly op: Op, private readonly heads: AttentionHeads, private readonly Tmax: number, private readonly QH: number) {}

  /** k, v: [slots, Tmax, nKV·hd] caches; q, out: [R, nH·hd]; places: [R] (slot, pos). */
  static async create(gpu: Gpu, heads: AttentionHeads, Tmax: number, b: { q: GpuBuffer; k: GpuBuffer; v: GpuBuffer; places: GpuBuffer; out: GpuBuffer }): Promise<AttentionRowsOp> {
    if (heads.hd > 128) throw new Error(`attention_rows: head dim ${heads.hd} > 128 (the kernel's MAX_QD)`);
    if (heads.nH % heads.nKV !== 0) throw new Error(`attention_rows: ${heads.nH} query heads are not a multiple of ${heads.nKV} kv heads`);
    const split = attentionRowsSplit(gpu, heads);
    const op = await Op.create(gpu, { kernel: 'attention_rows_fwd.wgsl', constants: split, params: 'uuuuuf', bindings: [b.q, b.k, b.v, b.places, b.out], label: `attention_rows:${b.k.label}` });
    return new AttentionRowsOp(op, heads, Tmax, split.QH);
  }

  record(rec: Recorder, call: OpCall): void {
    const h = this.heads;
    rec.dispatch(this.op, [call.rows, this.Tmax, h.nH, h.nKV, h.hd, 1 / Math.sqrt(h.hd)], call.rows, h.nH / this.QH);
  }
}
