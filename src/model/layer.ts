/**
 * One LLaMA decoder layer's forward, shared by inference (src/model/llama.ts) and training
 * (src/train/step.ts): the ops are built once over a set of buffers, `recordLayerForward` encodes
 * them. As HF's LlamaDecoderLayer:
 *
 *   xn1 = rmsnorm(xin, input_layernorm)
 *   q = xn1·Wqᵀ ; k, v = xn1·Wkᵀ, xn1·Wvᵀ          (into the KV cache at position pos0 for inference)
 *   rope(q), rope(k)                                (rotate-half, table from rope_theta)
 *   a = causal_attention(q, k, v)                   (flash: online softmax, GQA; saves LSE)
 *   xmid = xin + a·Woᵀ                               (the += epilogue of the matmul is the residual add)
 *   xn2 = rmsnorm(xmid, post_attention_layernorm)
 *   h = silu(xn2·Wgateᵀ) ∘ (xn2·Wupᵀ)
 *   xout = xmid + h·Wdownᵀ
 *
 * Inference runs the residual stream in place (xin = xmid = xout); training keeps every layer's
 * input for the backward, so it copies xin → xmid and xmid → xout before the two additions.
 */
import type { GpuBuffer } from '../gpu/buffers.ts';
import type { Gpu } from '../gpu/device.ts';
import type { Recorder } from '../gpu/kernels.ts';
import type { LlamaDims } from './llama.ts';
import { AttentionOp, LinearOp, RmsNormOp, RopeOp, SwiGluOp, type WeightRef } from './ops.ts';

/** The buffers one layer's forward reads and writes (all f32, rows = B·T unless noted). */
export interface LayerBuffers {
  xin: GpuBuffer;
  xn1: GpuBuffer;
  rstd1: GpuBuffer;
  q: GpuBuffer;
  /** [B, Tmax, nKV·hd]: a KV cache for inference, plain rows for training. */
  k: GpuBuffer;
  v: GpuBuffer;
  attn: GpuBuffer;
  lse: GpuBuffer;
  xmid: GpuBuffer;
  xn2: GpuBuffer;
  rstd2: GpuBuffer;
  g: GpuBuffer;
  u: GpuBuffer;
  h: GpuBuffer;
  xout: GpuBuffer;
}

export interface LayerForwardOps {
  buffers: LayerBuffers;
  inNorm: RmsNormOp;
  q: LinearOp;
  k: LinearOp;
  v: LinearOp;
  ropeQ: RopeOp;
  ropeK: RopeOp;
  attention: AttentionOp;
  o: LinearOp;
  postNorm: RmsNormOp;
  gate: LinearOp;
  up: LinearOp;
  swiglu: SwiGluOp;
  down: LinearOp;
}

/** HF tensor names of layer `i`. */
export function layerNames(i: number) {
  const p = `model.layers.${i}.`;
  return {
    inNorm: `${p}input_layernorm.weight`,
    q: `${p}self_attn.q_proj.weight`,
    k: `${p}self_attn.k_proj.weight`,
    v: `${p}self_attn.v_proj.weight`,
    o: `${p}self_attn.o_proj.weight`,
    postNorm: `${p}post_attention_layernorm.weight`,
    gate: `${p}mlp.gate_proj.weight`,
    up: `${p}mlp.up_proj.weight`,
    down: `${p}mlp.down_proj.weight`,
  };
}

export async function buildLayerForward(
  gpu: Gpu,
  layer: number,
  weight: (name: string) => WeightRef,
  rope: { cos: GpuBuffer; sin: GpuBuffer },
  b: LayerBuffers,
  eps: number,
): Promise<LayerForwardOps> {
  const n = layerNames(layer);
  return {
    buffers: b,
    inNorm: await RmsNormOp.create(gpu, weight(n.inNorm), b.xin, b.xn1, b.rstd1, eps),
    q: await LinearOp.create(gpu, weight(n.q), b.xn1, b.q, false),
    k: await LinearOp.create(gpu, weight(n.k), b.xn1, b.k, false),
    v: await LinearOp.create(gpu, weight(n.v), b.xn1, b.v, false),
    ropeQ: await RopeOp.create(gpu, b.q, rope.cos, rope.sin),
    ropeK: await RopeOp.create(gpu, b.k, rope.cos, rope.sin),
    attention: await AttentionOp.create(gpu, b.q, b.k, b.v, b.attn, b.lse),
    o: await LinearOp.create(gpu, weight(n.o), b.attn, b.xmid, true),
    postNorm: await RmsNormOp.create(gpu, weight(n.postNorm), b.xmid, b.xn2, b.rstd2, eps),
    gate: await LinearOp.create(gpu, weight(n.gate), b.xn2, b.g, false),
    up: await LinearOp.create(gpu, weight(n.up), b.xn2, b.u, false),
    swiglu: await SwiGluOp.create(gpu, b.g, b.u, b.h),
    down: await LinearOp.create(gpu, weight(n.down), b.h, b.xout, true),
  };
}

export interface LayerCall {
  B: number;
  T: number;
  /** Position of the first of the T tokens (0 for training and prefill). */
  pos0: number;
  /** Rows per sequence in k/v: the cache length for decode, T for a batch processed whole. */
  kvStride: number;
  /** false: stop after h (the backward's recompute needs no xout). */
  complete: boolean;
}

/** Encodes one layer's forward (see the file header). */
export function recordLayerForward(rec: Recorder, L: LayerForwardOps, d: LlamaDims, c: LayerCall): void {
  const R = c.B * c.T;
  const b = L.buffers;
  const kvDim = d.nKV * d.hd;
  L.inNorm.record(rec, R);
  L.q.record(rec, R, 0, 0);
  // K/V rows land at row b·kvStride + pos0 + t (B = 1 whenever pos0 > 0).
  L.k.record(rec, R, 0, c.pos0 * kvDim);
  L.v.record(rec, R, 0, c.pos0 * kvDim);
  L.ropeQ.record(rec, { B: c.B, T: c.T, seqStride: c.T, rowOffset: 0, pos0: c.pos0, nHeads: d.nH, hd: d.hd });
  L.ropeK.record(rec, { B: c.B, T: c.T, seqStride: c.kvStride, rowOffset: c.pos0, pos0: c.pos0, nHeads: d.nKV, hd: d.hd });
  L.attention.record(rec, { B: c.B, T: c.T, Tmax: c.kvStride, pos0: c.pos0, nH: d.nH, nKV: d.nKV, hd: d.hd });
  if (b.xmid !== b.xin) rec.copy(b.xin, 0, b.xmid, 0, R * d.H * 4);
  L.o.record(rec, R, 0, 0);
  L.postNorm.record(rec, R);
  L.gate.record(rec, R, 0, 0);
  L.up.record(rec, R, 0, 0);
  L.swiglu.record(rec, R * d.I);
  if (!c.complete) return;
  if (b.xout !== b.xmid) rec.copy(b.xmid, 0, b.xout, 0, R * d.H * 4);
  L.down.record(rec, R, 0, 0);
}
