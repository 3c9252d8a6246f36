/**
 * The forward of R independent rows, each one token of its own sequence at its own position: the
 * rows of continuous batching (src/gen/batch-engine.ts), decode rows of many sequences and a
 * prefill chunk of one, all in one pass.
 *
 * Shape legend: R = rows of this call, slots = sequences with a KV cache, Tmax = cache rows per
 * slot, W = nKV·hd. Row r is token ids[r] of the sequence in slot places[r].slot, at position
 * places[r].pos; activations are dense [R, features] in a ForwardState (src/model/llama.ts), the
 * caches are the state's [slots, Tmax, W] buffers.
 *
 * Per layer, as src/model/layer.ts's forward except where rows differ in sequence and position:
 *   xn1 = rmsnorm(x); q = xn1·Wqᵀ; kNew, vNew = xn1·Wkᵀ, xn1·Wvᵀ   (dense [R, W], not the cache)
 *   rope_rows(q), rope_rows(kNew)                                   (row r at places[r].pos)
 *   kv_scatter: cache row places[r].slot·Tmax + places[r].pos = kNew[r], vNew[r]
 *   a = attention_rows(q, caches)                                   (row r: its slot's keys 0 ..= pos)
 *   x += a·Woᵀ; xn2 = rmsnorm(x); x += (silu(xn2·Wgateᵀ) ∘ xn2·Wupᵀ)·Wdownᵀ
 * The scatter comes before the attention, so rows of one prefill chunk see each other's keys.
 *
 * Every kernel computes a row from that row's own inputs in an order that does not depend on R or
 * on the other rows (the matmuls: the same fma chain over k for every row; attention: one
 * workgroup per (row, heads of one kv group), a split fixed per device); so a sequence gets the same bits alone or batched, and whatever the
 * chunking of its prompt (test/batch-engine.test.ts checks both).
 */
import type { GpuBuffer } from '../gpu/buffers.ts';
import type { Recorder } from '../gpu/kernels.ts';
import type { OpCall } from '../ops/op.ts';
import { EmbeddingOp } from '../ops/embedding.ts';
import { RmsNormOp } from '../ops/rmsnorm.ts';
import { RopeRowsOp } from '../ops/rope_rows.ts';
import { KvScatterOp } from '../ops/kv_scatter.ts';
import { AttentionRowsOp } from '../ops/attention_rows.ts';
import { buildLayerForward, type LayerForwardOps, type LayerLora } from './layer.ts';
import { adapterRefsIn, loraScale, type GpuAdapter } from './lora.ts';
import { EMBED_TOKENS, FINAL_NORM } from './weights.ts';
import type { ForwardState, LlamaModel } from './llama.ts';

/** The buffers of the rows beyond the ForwardState's: ids and places of each row, its new K/V. */
export interface RowsBuffers {
  /** u32 [maxRows]: the token of each row. */
  ids: GpuBuffer;
  /** u32 [maxRows, 2]: (slot, pos) of each row (kernels/include/row_places.wgsl). */
  places: GpuBuffer;
  /** f32 [maxRows, W]: each row's new key (RoPE applied in place) and value, before the scatter. */
  kNew: GpuBuffer;
  vNew: GpuBuffer;
}

interface RowsLayerOps {
  /**
   * The layer's norms, projections (K/V into kNew/vNew) and MLP, built by src/model/layer.ts. Its
   * sequence ops (ropeQ, ropeK, attention) are never recorded: the rows use the four below.
   */
  layer: LayerForwardOps;
  ropeQ: RopeRowsOp;
  ropeK: RopeRowsOp;
  scatter: KvScatterOp;
  attention: AttentionRowsOp;
}

export class RowsForward {
  private constructor(
    readonly model: LlamaModel,
    readonly state: ForwardState,
    readonly rows: RowsBuffers,
    private readonly embed: EmbeddingOp,
    private readonly layers: RowsLayerOps[],
    private readonly finalNorm: RmsNormOp,
  ) {}

  /** The ops over `state` (its caches: state.maxBatch slots of state.Tmax rows) and `rows`; LoRA when the model has an adapter. */
  static async create(model: LlamaModel, state: ForwardState, rows: RowsBuffers): Promise<RowsForward> {
    const gpu = model.gpu;
    const d = model.dims;
    const st = state;
    const adapter: GpuAdapter | undefined = model.adapter ?? undefined;
    const lora: LayerLora | undefined = adapter && st.loraScratch
      ? { adapter: adapterRefsIn(adapter.weights), dropout: 0, scale: loraScale(adapter.config), scratch: st.loraScratch }
      : undefined;
    if (adapter && !lora) throw new Error('rows forward: the model has an adapter but the ForwardState has no LoRA buffers');
    const embed = await EmbeddingOp.create(gpu, model.weight(EMBED_TOKENS), rows.ids, st.x);
    const heads = { nH: d.nH, nKV: d.nKV, hd: d.hd };
    const layers: RowsLayerOps[] = [];
    for (let l = 0; l < d.L; l++) {
      // The residual stream runs in place (xin = xmid = xout), as in LlamaForward.
      const x = st.x;
      const buffers = { xin: x, xn1: st.xn, rstd1: st.rstd, q: st.q, k: rows.kNew, v: rows.vNew, attn: st.attn, lse: st.lse, xmid: x, xn2: st.xn, rstd2: st.rstd, g: st.g, u: st.u, h: st.h, xout: x, loraZ: st.loraZ };
      layers.push({
        layer: await buildLayerForward(gpu, l, (name) => model.weight(name), model.rope, buffers, d, lora),
        ropeQ: await RopeRowsOp.create(gpu, st.q, model.rope, rows.places, { nHeads: d.nH, hd: d.hd }),
        ropeK: await RopeRowsOp.create(gpu, rows.kNew, model.rope, rows.places, { nHeads: d.nKV, hd: d.hd }),
        scatter: await KvScatterOp.create(gpu, { W: d.nKV * d.hd, Tmax: st.Tmax }, { kRows: rows.kNew, vRows: rows.vNew, places: rows.places, kCache: st.kCache[l], vCache: st.vCache[l] }),
        attention: await AttentionRowsOp.create(gpu, heads, st.Tmax, { q: st.q, k: st.kCache[l], v: st.vCache[l], places: rows.places, out: st.attn }),
      });
    }
    const finalNorm = await RmsNormOp.create(gpu, model.weight(FINAL_NORM), st.x, st.xn, st.rstd, d.eps);
    return new RowsForward(model, st, rows, embed, layers, finalNorm);
  }

  /**
   * Encodes the forward of rows 0 .. R-1 (their ids and places already uploaded) up to the final
   * norm: output in state.xn rows 0 .. R-1; each row's K/V written into its slot's cache.
   */
  record(rec: Recorder, R: number): void {
    if (R > this.state.maxRows) throw new Error(`rows forward of ${R} rows exceeds the state's ${this.state.maxRows}`);
    const rows: OpCall = { rows: R };
    this.embed.record(rec, rows);
    for (const { layer: L, ropeQ, ropeK, scatter, attention } of this.layers) {
      L.inNorm.record(rec, rows);
      L.q.record(rec, rows);
      L.k.record(rec, rows);
      L.v.record(rec, rows);
      ropeQ.record(rec, rows);
      ropeK.record(rec, rows);
      scatter.record(rec, rows);
      attention.record(rec, rows);
      L.o.record(rec, rows);
      L.postNorm.record(rec, rows);
      L.gate.record(rec, rows);
      L.up.record(rec, rows);
      L.swiglu.record(rec, rows);
      L.down.record(rec, rows);
    }
    this.finalNorm.record(rec, rows);
  }
}
