/**
 * One LLaMA decoder layer, forward and backward side by side (HF's LlamaDecoderLayer). The forward
 * is shared by inference (src/model/llama.ts) and training (src/train/step.ts); the backward is the
 * forward's list of calls reversed, each line quoting the forward line it differentiates.
 *
 * Shape legend: B = sequences, T = tokens per sequence in this call, R = B·T rows, H = hidden,
 * I = intermediate, nH / nKV = query / key-value heads, hd = head dim. Activations are row-major
 * f32 [R, features]; K/V are [B, kvStride, nKV·hd].
 *
 * Forward:
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
 *
 * Backward (dx = dL/dxout on entry, dL/dxin on exit; weight gradients accumulate with +=):
 *   dh = dx·Wdown; dWdown += dxᵀ·h                   xout = xmid + h·Wdownᵀ
 *   dg, du = swiglu_bwd(dh, g, u)                    h = silu(g) ∘ u
 *   dxn = dg·Wgate + du·Wup; dWgate, dWup += ..      g, u = xn2·Wgateᵀ, xn2·Wupᵀ
 *   dx += rmsnorm_bwd(dxn, xmid); dw_post += ..      xn2 = rmsnorm(xmid)  (dx is now dL/dxmid)
 *   da = dx·Wo; dWo += dxᵀ·a                         xmid = xin + a·Woᵀ
 *   dq, dk, dv = attention_bwd(da)                   a = attention(q, k, v)
 *   rope_bwd(dq), rope_bwd(dk)                       rope(q), rope(k)
 *   dxn = dq·Wq + dk·Wk + dv·Wv; dWq/k/v += ..       q, k, v = xn1·Wq/k/vᵀ
 *   dx += rmsnorm_bwd(dxn, xin); dw_in += ..         xn1 = rmsnorm(xin)   (dx is now dL/dxin)
 * The backward runs over plain rows (pos0 = 0, kvStride = T) and needs the forward's activations
 * of the same call: kept, or recomputed with `complete: false` right before (checkpointing).
 */
import type { GpuBuffer } from '../gpu/buffers.ts';
import type { Gpu } from '../gpu/device.ts';
import type { Recorder } from '../gpu/kernels.ts';
import type { LlamaDims } from './config.ts';
import { layerTensorNames } from './weights.ts';
import type { OpCall, WeightRef } from '../ops/op.ts';
import { LinearGradInputOp, LinearGradWeightOp, LinearOp } from '../ops/matmul.ts';
import { RmsNormBackwardOp, RmsNormOp } from '../ops/rmsnorm.ts';
import { RopeOp } from '../ops/rope.ts';
import { AttentionBackwardOp, AttentionOp } from '../ops/attention.ts';
import { SwiGluBackwardOp, SwiGluOp } from '../ops/swiglu.ts';

/** The RoPE cos/sin tables (src/model/rope-table.ts) on the GPU. */
export interface RopeTables {
  cos: GpuBuffer;
  sin: GpuBuffer;
}

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

export async function buildLayerForward(gpu: Gpu, layer: number, weight: (name: string) => WeightRef, rope: RopeTables, b: LayerBuffers, d: LlamaDims): Promise<LayerForwardOps> {
  const n = layerTensorNames(layer);
  const heads = { nH: d.nH, nKV: d.nKV, hd: d.hd };
  return {
    buffers: b,
    inNorm: await RmsNormOp.create(gpu, weight(n.inNorm), b.xin, b.xn1, b.rstd1, d.eps),
    q: await LinearOp.create(gpu, weight(n.q), b.xn1, b.q, false),
    k: await LinearOp.create(gpu, weight(n.k), b.xn1, b.k, false),
    v: await LinearOp.create(gpu, weight(n.v), b.xn1, b.v, false),
    ropeQ: await RopeOp.create(gpu, b.q, rope, { nHeads: d.nH, hd: d.hd, layout: 'rows' }),
    ropeK: await RopeOp.create(gpu, b.k, rope, { nHeads: d.nKV, hd: d.hd, layout: 'cache' }),
    attention: await AttentionOp.create(gpu, heads, b.q, b.k, b.v, b.attn, b.lse),
    o: await LinearOp.create(gpu, weight(n.o), b.attn, b.xmid, true),
    postNorm: await RmsNormOp.create(gpu, weight(n.postNorm), b.xmid, b.xn2, b.rstd2, d.eps),
    gate: await LinearOp.create(gpu, weight(n.gate), b.xn2, b.g, false),
    up: await LinearOp.create(gpu, weight(n.up), b.xn2, b.u, false),
    swiglu: await SwiGluOp.create(gpu, d.I, b.g, b.u, b.h),
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
  const rows: OpCall = { rows: R };
  const seq: OpCall = { rows: R, B: c.B, T: c.T, pos0: c.pos0, kvStride: c.kvStride };
  L.inNorm.record(rec, rows);
  L.q.record(rec, rows);
  // K/V rows land at row b·kvStride + pos0 + t (B = 1 whenever pos0 > 0).
  L.k.record(rec, { rows: R, outRow: c.pos0 });
  L.v.record(rec, { rows: R, outRow: c.pos0 });
  L.ropeQ.record(rec, seq);
  L.ropeK.record(rec, seq);
  L.attention.record(rec, seq);
  if (b.xmid !== b.xin) rec.copy(b.xin, 0, b.xmid, 0, R * d.H * 4);
  L.o.record(rec, rows);
  L.postNorm.record(rec, rows);
  L.gate.record(rec, rows);
  L.up.record(rec, rows);
  L.swiglu.record(rec, rows);
  if (!c.complete) return;
  if (b.xout !== b.xmid) rec.copy(b.xmid, 0, b.xout, 0, R * d.H * 4);
  L.down.record(rec, rows);
}

/** The gradient buffers of the backward, shared by all layers (all f32 [R, features]). */
export interface LayerGradBuffers {
  /** dL/dxout on entry, dL/dxin on exit. */
  dx: GpuBuffer;
  dxn: GpuBuffer;
  dh: GpuBuffer;
  dg: GpuBuffer;
  du: GpuBuffer;
  dattn: GpuBuffer;
  /** rowsum(dO ∘ O) per row and head. */
  dsum: GpuBuffer;
  dq: GpuBuffer;
  dk: GpuBuffer;
  dv: GpuBuffer;
}

export interface LayerBackwardOps {
  downIn: LinearGradInputOp;
  downW: LinearGradWeightOp;
  swiglu: SwiGluBackwardOp;
  gateIn: LinearGradInputOp;
  upIn: LinearGradInputOp;
  gateW: LinearGradWeightOp;
  upW: LinearGradWeightOp;
  postNorm: RmsNormBackwardOp;
  oIn: LinearGradInputOp;
  oW: LinearGradWeightOp;
  attention: AttentionBackwardOp;
  ropeQ: RopeOp;
  ropeK: RopeOp;
  qIn: LinearGradInputOp;
  kIn: LinearGradInputOp;
  vIn: LinearGradInputOp;
  qW: LinearGradWeightOp;
  kW: LinearGradWeightOp;
  vW: LinearGradWeightOp;
  inNorm: RmsNormBackwardOp;
}

/**
 * The backward of layer `layer` over the forward buffers `a` (the ones its forward wrote) and the
 * shared gradient buffers `g`. `weight` gives the weights the forward read, `grad` their gradients.
 */
export async function buildLayerBackward(
  gpu: Gpu,
  layer: number,
  weight: (name: string) => WeightRef,
  grad: (name: string) => WeightRef,
  rope: RopeTables,
  a: LayerBuffers,
  g: LayerGradBuffers,
  d: LlamaDims,
): Promise<LayerBackwardOps> {
  const n = layerTensorNames(layer);
  const heads = { nH: d.nH, nKV: d.nKV, hd: d.hd };
  return {
    downIn: await LinearGradInputOp.create(gpu, weight(n.down), g.dx, g.dh, false),
    downW: await LinearGradWeightOp.create(gpu, grad(n.down), g.dx, a.h),
    swiglu: await SwiGluBackwardOp.create(gpu, d.I, g.dh, a.g, a.u, g.dg, g.du),
    gateIn: await LinearGradInputOp.create(gpu, weight(n.gate), g.dg, g.dxn, false),
    upIn: await LinearGradInputOp.create(gpu, weight(n.up), g.du, g.dxn, true),
    gateW: await LinearGradWeightOp.create(gpu, grad(n.gate), g.dg, a.xn2),
    upW: await LinearGradWeightOp.create(gpu, grad(n.up), g.du, a.xn2),
    postNorm: await RmsNormBackwardOp.create(gpu, weight(n.postNorm), grad(n.postNorm), g.dxn, a.xmid, a.rstd2, g.dx, true),
    oIn: await LinearGradInputOp.create(gpu, weight(n.o), g.dx, g.dattn, false),
    oW: await LinearGradWeightOp.create(gpu, grad(n.o), g.dx, a.attn),
    attention: await AttentionBackwardOp.create(gpu, heads, { q: a.q, k: a.k, v: a.v, o: a.attn, lse: a.lse, dout: g.dattn, dsum: g.dsum, dq: g.dq, dk: g.dk, dv: g.dv }),
    ropeQ: await RopeOp.create(gpu, g.dq, rope, { nHeads: d.nH, hd: d.hd, layout: 'rows' }, 'bwd'),
    ropeK: await RopeOp.create(gpu, g.dk, rope, { nHeads: d.nKV, hd: d.hd, layout: 'rows' }, 'bwd'),
    qIn: await LinearGradInputOp.create(gpu, weight(n.q), g.dq, g.dxn, false),
    kIn: await LinearGradInputOp.create(gpu, weight(n.k), g.dk, g.dxn, true),
    vIn: await LinearGradInputOp.create(gpu, weight(n.v), g.dv, g.dxn, true),
    qW: await LinearGradWeightOp.create(gpu, grad(n.q), g.dq, a.xn1),
    kW: await LinearGradWeightOp.create(gpu, grad(n.k), g.dk, a.xn1),
    vW: await LinearGradWeightOp.create(gpu, grad(n.v), g.dv, a.xn1),
    inNorm: await RmsNormBackwardOp.create(gpu, weight(n.inNorm), grad(n.inNorm), g.dxn, a.xin, a.rstd1, g.dx, true),
  };
}

/** Encodes one layer's backward over B sequences of T rows: the forward's list reversed (see the file header). */
export function recordLayerBackward(rec: Recorder, G: LayerBackwardOps, c: { B: number; T: number }): void {
  const rows: OpCall = { rows: c.B * c.T };
  const seq: OpCall = { rows: c.B * c.T, B: c.B, T: c.T, pos0: 0, kvStride: c.T };
  G.downIn.record(rec, rows); //   xout = xmid + h·Wdownᵀ
  G.downW.record(rec, rows);
  G.swiglu.record(rec, rows); //   h = silu(g) ∘ u
  G.gateIn.record(rec, rows); //   g, u = xn2·Wgateᵀ, xn2·Wupᵀ
  G.upIn.record(rec, rows);
  G.gateW.record(rec, rows);
  G.upW.record(rec, rows);
  G.postNorm.record(rec, rows); // xn2 = rmsnorm(xmid)
  G.oIn.record(rec, rows); //      xmid = xin + a·Woᵀ
  G.oW.record(rec, rows);
  G.attention.record(rec, seq); // a = attention(q, k, v)
  G.ropeQ.record(rec, seq); //     rope(q), rope(k)
  G.ropeK.record(rec, seq);
  G.qIn.record(rec, rows); //      q, k, v = xn1·Wq/k/vᵀ
  G.kIn.record(rec, rows);
  G.vIn.record(rec, rows);
  G.qW.record(rec, rows);
  G.kW.record(rec, rows);
  G.vW.record(rec, rows);
  G.inNorm.record(rec, rows); //   xn1 = rmsnorm(xin)
}
