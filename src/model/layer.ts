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
import { LORA_MODULES, type LayerRole } from './lora.ts';
import type { ModelOp, OpCall, WeightRef } from '../ops/op.ts';
import { LoraLinearBackwardOp, LoraLinearOp, type AdapterRefs, type LoraScratch } from '../ops/lora.ts';
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
  /** With LoRA: z = s·dropout(x)·Aᵀ [R, r] of each adapted projection, kept for the backward. */
  loraZ?: Partial<Record<LayerRole, GpuBuffer>>;
}

/**
 * LoRA on a layer's projections (src/model/lora.ts, src/ops/lora.ts): the adapter of a base weight
 * (undefined: not a target), the dropout probability, the scale alpha / r, and the scratch shared
 * by every module.
 */
export interface LayerLora {
  adapter: (baseName: string) => AdapterRefs | undefined;
  dropout: number;
  scale: number;
  scratch: LoraScratch;
}

export interface LayerForwardOps {
  buffers: LayerBuffers;
  inNorm: RmsNormOp;
  q: ModelOp;
  k: ModelOp;
  v: ModelOp;
  ropeQ: RopeOp;
  ropeK: RopeOp;
  attention: AttentionOp;
  o: ModelOp;
  postNorm: RmsNormOp;
  gate: ModelOp;
  up: ModelOp;
  swiglu: SwiGluOp;
  down: ModelOp;
}

/** The mask owner of a layer's projection: layer · 8 + its index among the LoRA modules. */
function dropoutSalt(layer: number, role: LayerRole): number {
  return layer * 8 + Object.values(LORA_MODULES).indexOf(role);
}

export async function buildLayerForward(gpu: Gpu, layer: number, weight: (name: string) => WeightRef, rope: RopeTables, b: LayerBuffers, d: LlamaDims, lora?: LayerLora): Promise<LayerForwardOps> {
  const n = layerTensorNames(layer);
  const heads = { nH: d.nH, nKV: d.nKV, hd: d.hd };
  /** y (= or +=) x·Wᵀ of the projection `role`, plus its adapter's term when it is a LoRA target. */
  const linear = async (role: LayerRole, x: GpuBuffer, y: GpuBuffer, accumulate: boolean): Promise<ModelOp> => {
    const base = await LinearOp.create(gpu, weight(n[role]), x, y, accumulate);
    const adapter = lora?.adapter(n[role]);
    if (!lora || !adapter) return base;
    const z = b.loraZ?.[role];
    if (!z) throw new Error(`layer ${layer}: no LoRA z buffer for ${role}`);
    return LoraLinearOp.create(gpu, base, adapter, { p: lora.dropout, scale: lora.scale, salt: dropoutSalt(layer, role) }, x, y, z, lora.scratch.xs);
  };
  return {
    buffers: b,
    inNorm: await RmsNormOp.create(gpu, weight(n.inNorm), b.xin, b.xn1, b.rstd1, d.eps),
    q: await linear('q', b.xn1, b.q, false),
    k: await linear('k', b.xn1, b.k, false),
    v: await linear('v', b.xn1, b.v, false),
    ropeQ: await RopeOp.create(gpu, b.q, rope, { nHeads: d.nH, hd: d.hd, layout: 'rows' }),
    ropeK: await RopeOp.create(gpu, b.k, rope, { nHeads: d.nKV, hd: d.hd, layout: 'cache' }),
    attention: await AttentionOp.create(gpu, heads, b.q, b.k, b.v, b.attn, b.lse),
    o: await linear('o', b.attn, b.xmid, true),
    postNorm: await RmsNormOp.create(gpu, weight(n.postNorm), b.xmid, b.xn2, b.rstd2, d.eps),
    gate: await linear('gate', b.xn2, b.g, false),
    up: await linear('up', b.xn2, b.u, false),
    swiglu: await SwiGluOp.create(gpu, d.I, b.g, b.u, b.h),
    down: await linear('down', b.h, b.xout, true),
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
  /** The dropout stream of this call (src/ops/dropout.ts dropoutCallKey); 0 when there is no dropout. */
  key?: number;
}

/** Encodes one layer's forward (see the file header). */
export function recordLayerForward(rec: Recorder, L: LayerForwardOps, d: LlamaDims, c: LayerCall): void {
  const R = c.B * c.T;
  const b = L.buffers;
  const rows: OpCall = { rows: R, key: c.key };
  const seq: OpCall = { rows: R, B: c.B, T: c.T, pos0: c.pos0, kvStride: c.kvStride };
  L.inNorm.record(rec, rows);
  L.q.record(rec, rows);
  // K/V rows land at row b·kvStride + pos0 + t (B = 1 whenever pos0 > 0).
  L.k.record(rec, { rows: R, outRow: c.pos0, key: c.key });
  L.v.record(rec, { rows: R, outRow: c.pos0, key: c.key });
  L.ropeQ.record(rec, seq);
  L.ropeK.record(rec, seq);
  L.attention.record(rec, seq);
  if (b.xmid !== b.xin) rec.copy(b.xin, 0, b.xmid, 0, R * d.H * 4);
  L.o.record(rec, rows);
  L.postNorm.record(rec, rows);
  L.gate.record(rec, rows);
  L.up.record(rec, rows);
  L.swiglu.record(rec, rows);
  if (!c.complete) {
    L.down.recordSaved?.(rec, rows); // LoRA's z of the down projection, which the backward reads
    return;
  }
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
  /** Weight-gradient ops: absent for frozen base weights (LoRA). */
  downW?: LinearGradWeightOp;
  swiglu: SwiGluBackwardOp;
  gateIn: LinearGradInputOp;
  upIn: LinearGradInputOp;
  gateW?: LinearGradWeightOp;
  upW?: LinearGradWeightOp;
  postNorm: RmsNormBackwardOp;
  oIn: LinearGradInputOp;
  oW?: LinearGradWeightOp;
  attention: AttentionBackwardOp;
  ropeQ: RopeOp;
  ropeK: RopeOp;
  qIn: LinearGradInputOp;
  kIn: LinearGradInputOp;
  vIn: LinearGradInputOp;
  qW?: LinearGradWeightOp;
  kW?: LinearGradWeightOp;
  vW?: LinearGradWeightOp;
  inNorm: RmsNormBackwardOp;
  /** LoRA: each adapted projection's adapter backward, run right after the base's dX. */
  lora: Partial<Record<LayerRole, LoraLinearBackwardOp>>;
}

/**
 * The backward of layer `layer` over the forward buffers `a` (the ones its forward wrote) and the
 * shared gradient buffers `g`. `weight` gives the weights the forward read, `grad` their gradients
 * (null: the base is frozen, as with LoRA: no weight gradients are computed); `lora` adds the
 * adapters' backward with their gradients.
 */
export async function buildLayerBackward(
  gpu: Gpu,
  layer: number,
  weight: (name: string) => WeightRef,
  grad: ((name: string) => WeightRef) | null,
  rope: RopeTables,
  a: LayerBuffers,
  g: LayerGradBuffers,
  d: LlamaDims,
  lora?: LayerLora & { grad: (baseName: string) => AdapterRefs | undefined },
): Promise<LayerBackwardOps> {
  const n = layerTensorNames(layer);
  const heads = { nH: d.nH, nKV: d.nKV, hd: d.hd };
  const dW = (role: LayerRole, dy: GpuBuffer, x: GpuBuffer) => (grad ? LinearGradWeightOp.create(gpu, grad(n[role]), dy, x) : undefined);
  const adapterOps: Partial<Record<LayerRole, LoraLinearBackwardOp>> = {};
  /** The adapter backward of projection `role` (input x, output gradient dy, input gradient dx). */
  const adapterBackward = async (role: LayerRole, dy: GpuBuffer, x: GpuBuffer, dx: GpuBuffer) => {
    const adapter = lora?.adapter(n[role]);
    if (!lora || !adapter) return;
    const gradRefs = lora.grad(n[role]);
    const z = a.loraZ?.[role];
    if (!gradRefs || !z) throw new Error(`layer ${layer}: LoRA ${role} has no gradient or z buffer`);
    adapterOps[role] = await LoraLinearBackwardOp.create(gpu, adapter, gradRefs, { p: lora.dropout, scale: lora.scale, salt: dropoutSalt(layer, role) }, lora.scratch, dy, x, z, dx);
  };
  const ops: LayerBackwardOps = {
    downIn: await LinearGradInputOp.create(gpu, weight(n.down), g.dx, g.dh, false),
    downW: await dW('down', g.dx, a.h),
    swiglu: await SwiGluBackwardOp.create(gpu, d.I, g.dh, a.g, a.u, g.dg, g.du),
    gateIn: await LinearGradInputOp.create(gpu, weight(n.gate), g.dg, g.dxn, false),
    upIn: await LinearGradInputOp.create(gpu, weight(n.up), g.du, g.dxn, true),
    gateW: await dW('gate', g.dg, a.xn2),
    upW: await dW('up', g.du, a.xn2),
    postNorm: await RmsNormBackwardOp.create(gpu, weight(n.postNorm), grad ? grad(n.postNorm) : null, g.dxn, a.xmid, a.rstd2, g.dx, true),
    oIn: await LinearGradInputOp.create(gpu, weight(n.o), g.dx, g.dattn, false),
    oW: await dW('o', g.dx, a.attn),
    attention: await AttentionBackwardOp.create(gpu, heads, { q: a.q, k: a.k, v: a.v, o: a.attn, lse: a.lse, dout: g.dattn, dsum: g.dsum, dq: g.dq, dk: g.dk, dv: g.dv }),
    ropeQ: await RopeOp.create(gpu, g.dq, rope, { nHeads: d.nH, hd: d.hd, layout: 'rows' }, 'bwd'),
    ropeK: await RopeOp.create(gpu, g.dk, rope, { nHeads: d.nKV, hd: d.hd, layout: 'rows' }, 'bwd'),
    qIn: await LinearGradInputOp.create(gpu, weight(n.q), g.dq, g.dxn, false),
    kIn: await LinearGradInputOp.create(gpu, weight(n.k), g.dk, g.dxn, true),
    vIn: await LinearGradInputOp.create(gpu, weight(n.v), g.dv, g.dxn, true),
    qW: await dW('q', g.dq, a.xn1),
    kW: await dW('k', g.dk, a.xn1),
    vW: await dW('v', g.dv, a.xn1),
    inNorm: await RmsNormBackwardOp.create(gpu, weight(n.inNorm), grad ? grad(n.inNorm) : null, g.dxn, a.xin, a.rstd1, g.dx, true),
    lora: adapterOps,
  };
  // Each adapter adds into the same input gradient as its base projection, after the base's `=`.
  await adapterBackward('down', g.dx, a.h, g.dh);
  await adapterBackward('gate', g.dg, a.xn2, g.dxn);
  await adapterBackward('up', g.du, a.xn2, g.dxn);
  await adapterBackward('o', g.dx, a.attn, g.dattn);
  await adapterBackward('q', g.dq, a.xn1, g.dxn);
  await adapterBackward('k', g.dk, a.xn1, g.dxn);
  await adapterBackward('v', g.dv, a.xn1, g.dxn);
  return ops;
}

/** Encodes one layer's backward over B sequences of T rows: the forward's list reversed (see the file header). */
export function recordLayerBackward(rec: Recorder, G: LayerBackwardOps, c: { B: number; T: number; key?: number }): void {
  const rows: OpCall = { rows: c.B * c.T, key: c.key };
  const seq: OpCall = { rows: c.B * c.T, B: c.B, T: c.T, pos0: 0, kvStride: c.T };
  const L = G.lora;
  G.downIn.record(rec, rows); //   xout = xmid + h·Wdownᵀ
  L.down?.record(rec, rows);
  G.downW?.record(rec, rows);
  G.swiglu.record(rec, rows); //   h = silu(g) ∘ u
  G.gateIn.record(rec, rows); //   g, u = xn2·Wgateᵀ, xn2·Wupᵀ
  G.upIn.record(rec, rows);
  L.gate?.record(rec, rows);
  L.up?.record(rec, rows);
  G.gateW?.record(rec, rows);
  G.upW?.record(rec, rows);
  G.postNorm.record(rec, rows); // xn2 = rmsnorm(xmid)
  G.oIn.record(rec, rows); //      xmid = xin + a·Woᵀ
  L.o?.record(rec, rows);
  G.oW?.record(rec, rows);
  G.attention.record(rec, seq); // a = attention(q, k, v)
  G.ropeQ.record(rec, seq); //     rope(q), rope(k)
  G.ropeK.record(rec, seq);
  G.qIn.record(rec, rows); //      q, k, v = xn1·Wq/k/vᵀ
  G.kIn.record(rec, rows);
  G.vIn.record(rec, rows);
  L.q?.record(rec, rows);
  L.k?.record(rec, rows);
  L.v?.record(rec, rows);
  G.qW?.record(rec, rows);
  G.kW?.record(rec, rows);
  G.vW?.record(rec, rows);
  G.inNorm.record(rec, rows); //   xn1 = rmsnorm(xin)
}
