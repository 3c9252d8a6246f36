/**
 * Causal flash attention with GQA over a KV buffer (kernels/attention_fwd.wgsl and the three
 * backward passes attention_bwd_prep/_dq/_dkv.wgsl; reference src/reference/attention.ts).
 * Both read B, T, pos0 and kvStride (the K/V rows per sequence: Tmax).
 */
import type { GpuBuffer } from '../gpu/buffers.ts';
import type { Gpu } from '../gpu/device.ts';
import { grid1d, Op, type Recorder } from '../gpu/kernels.ts';
import { sequences, type ModelOp, type OpCall } from './op.ts';

export interface AttentionHeads {
  nH: number;
  nKV: number;
  hd: number;
}

/**
 * Tile shapes of the attention kernels (see their headers). Many queries (training, prefill):
 * a workgroup takes QB·QR queries; on lavapipe every load is a per-lane gather, so each thread
 * takes QR = 4 query rows to reuse each key load 4 times (3-4× faster there); on a GPU one row per
 * thread and 64 threads. One query (decode): the keys are split over a 64-thread workgroup.
 */
export function attentionTiles(gpu: Gpu) {
  const software = gpu.report.isSoftware;
  return {
    many: software ? { QB: 8, QR: 4, KS: 1 } : { QB: 64, QR: 1, KS: 1 },
    one: { QB: 1, QR: 1, KS: 64 },
    dq: software ? { QB: 8, QR: 4 } : { QB: 64, QR: 1 },
    dkv: software ? { SB: 8, SR: 4 } : { SB: 64, SR: 1 },
  };
}

/** The Params of attention_fwd / _bwd_dq / _bwd_dkv ('uuuuuuuf'): [B, T, Tmax, pos0, nH, nKV, hd, scale]. */
function attentionParams(h: AttentionHeads, s: { B: number; T: number; pos0: number; kvStride: number }): number[] {
  return [s.B, s.T, s.kvStride, s.pos0, h.nH, h.nKV, h.hd, 1 / Math.sqrt(h.hd)];
}

/** out = softmax(q·kᵀ·scale, causal) · v, saving LSE. */
export class AttentionOp implements ModelOp {
  private constructor(private readonly many: Op, private readonly one: Op, private readonly tiles: ReturnType<typeof attentionTiles>, private readonly heads: AttentionHeads) {}

  static async create(gpu: Gpu, heads: AttentionHeads, q: GpuBuffer, k: GpuBuffer, v: GpuBuffer, out: GpuBuffer, lse: GpuBuffer): Promise<AttentionOp> {
    const tiles = attentionTiles(gpu);
    const make = (constants: Record<string, number>) =>
      Op.create(gpu, { kernel: 'attention_fwd.wgsl', constants, params: 'uuuuuuuf', bindings: [q, k, v, out, lse], label: `attention:${k.label}` });
    return new AttentionOp(await make(tiles.many), await make(tiles.one), tiles, heads);
  }

  record(rec: Recorder, call: OpCall): void {
    const s = sequences(call, 'attention');
    const single = s.T === 1;
    const t = single ? this.tiles.one : this.tiles.many;
    rec.dispatch(single ? this.one : this.many, attentionParams(this.heads, s), Math.ceil(s.T / (t.QB * t.QR)), this.heads.nH, s.B);
  }
}

/** Threads per workgroup of attention_bwd_prep.wgsl. */
const PREP_WG = 64;

/** Flash-attention backward: D = rowsum(dO∘O), then dQ, then dK/dV (three owner-computes passes). */
export class AttentionBackwardOp implements ModelOp {
  private constructor(private readonly prep: Op, private readonly dq: Op, private readonly dkv: Op, private readonly tiles: ReturnType<typeof attentionTiles>, private readonly heads: AttentionHeads) {}

  static async create(
    gpu: Gpu,
    heads: AttentionHeads,
    b: { q: GpuBuffer; k: GpuBuffer; v: GpuBuffer; o: GpuBuffer; lse: GpuBuffer; dout: GpuBuffer; dsum: GpuBuffer; dq: GpuBuffer; dk: GpuBuffer; dv: GpuBuffer },
  ): Promise<AttentionBackwardOp> {
    const tiles = attentionTiles(gpu);
    const prep = await Op.create(gpu, { kernel: 'attention_bwd_prep.wgsl', constants: { WG: PREP_WG }, params: 'uuu', bindings: [b.o, b.dout, b.dsum], label: 'attention_bwd_prep' });
    const dq = await Op.create(gpu, { kernel: 'attention_bwd_dq.wgsl', constants: tiles.dq, params: 'uuuuuuuf', bindings: [b.q, b.k, b.v, b.dout, b.lse, b.dsum, b.dq], label: 'attention_bwd_dq' });
    const dkv = await Op.create(gpu, { kernel: 'attention_bwd_dkv.wgsl', constants: tiles.dkv, params: 'uuuuuuuf', bindings: [b.q, b.k, b.v, b.dout, b.lse, b.dsum, b.dk, b.dv], label: 'attention_bwd_dkv' });
    return new AttentionBackwardOp(prep, dq, dkv, tiles, heads);
  }

  record(rec: Recorder, call: OpCall): void {
    const s = sequences(call, 'attention backward');
    const h = this.heads;
    rec.dispatch(this.prep, [call.rows, h.nH, h.hd], ...grid1d(Math.ceil((call.rows * h.nH) / PREP_WG)));
    const p = attentionParams(h, s);
    rec.dispatch(this.dq, p, Math.ceil(s.T / (this.tiles.dq.QB * this.tiles.dq.QR)), h.nH, s.B);
    rec.dispatch(this.dkv, p, Math.ceil(s.kvStride / (this.tiles.dkv.SB * this.tiles.dkv.SR)), h.nKV, s.B);
  }
}
