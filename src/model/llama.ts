/**
 * LLaMA (HF `LlamaForCausalLM` layout and names) on the GPU: weights, and the forward pass used
 * for prefill, KV-cache decode and evaluation.
 *
 * Shape legend: B = batch, T = tokens in this call, Tmax = KV-cache length per sequence,
 * H = hidden, I = intermediate, nH / nKV = query / key-value heads, hd = head dim, V = vocab,
 * R = B·T rows. Activations are row-major f32 [R, features].
 *
 * One layer, as HF computes it:
 *   xn = rmsnorm(x, input_layernorm)
 *   q = xn·Wqᵀ ; k, v = xn·Wkᵀ, xn·Wvᵀ written straight into the KV cache at position pos0
 *   rope(q), rope(k rows of the cache)            (rotate-half, table from rope_theta)
 *   a = causal_attention(q, Kcache, Vcache)       (flash: online softmax, GQA)
 *   x += a·Woᵀ                                     (matmul with += epilogue: the residual add)
 *   xn = rmsnorm(x, post_attention_layernorm)
 *   h = silu(xn·Wgateᵀ) ∘ (xn·Wupᵀ)
 *   x += h·Wdownᵀ
 * then xn = rmsnorm(x, model.norm) and logits = xn·lm_headᵀ for the rows asked for.
 */
import { createStorage, createStorageFrom, withGpuErrorCheck, type GpuBuffer } from '../gpu/buffers.ts';
import type { Gpu } from '../gpu/device.ts';
import { Recorder } from '../gpu/kernels.ts';
import { ropeTable } from '../gpu/rope-table.ts';
import { UserError } from '../errors.ts';
import { f32ArrayToBf16 } from '../util/bf16.ts';
import { headDim, loadLlamaConfig, type LlamaConfig } from './config.ts';
import { checkLlamaTensors, llamaWeightSpecs } from './hf-weights.ts';
import { SafetensorsModel } from './safetensors.ts';
import { llamaParamTable, type ParamEntry, type ParamTable } from './param-table.ts';
import { ParamBuffers, type ElemType } from './param-buffers.ts';
import { AttentionOp, EmbeddingOp, LinearOp, RmsNormOp, RopeOp, SwiGluOp, type WeightRef } from './ops.ts';

export interface LlamaDims {
  H: number;
  I: number;
  L: number;
  nH: number;
  nKV: number;
  hd: number;
  V: number;
  eps: number;
}

export function llamaDims(cfg: LlamaConfig): LlamaDims {
  return {
    H: cfg.hidden_size,
    I: cfg.intermediate_size,
    L: cfg.num_hidden_layers,
    nH: cfg.num_attention_heads,
    nKV: cfg.num_key_value_heads,
    hd: headDim(cfg),
    V: cfg.vocab_size,
    eps: cfg.rms_norm_eps,
  };
}

/** Names of one layer's tensors. */
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

/** The model's weights on the GPU (bf16 or f32), laid out by the parameter table. */
export class LlamaModel {
  readonly dims: LlamaDims;
  readonly ropeCos: GpuBuffer;
  readonly ropeSin: GpuBuffer;
  readonly maxPositions: number;

  private constructor(
    readonly gpu: Gpu,
    readonly cfg: LlamaConfig,
    readonly table: ParamTable,
    readonly weights: ParamBuffers,
  ) {
    this.dims = llamaDims(cfg);
    this.maxPositions = cfg.max_position_embeddings;
    const { cos, sin } = ropeTable(this.maxPositions, this.dims.hd, cfg.rope_theta);
    this.ropeCos = createStorageFrom(gpu, 'rope.cos', cos);
    this.ropeSin = createStorageFrom(gpu, 'rope.sin', sin);
  }

  get dtype(): ElemType {
    return this.weights.elem;
  }

  /** An empty model (zeros) of this config: callers upload the weights. A smaller `maxBindingBytes` than the device's splits tensors into more chunks (tests). */
  static allocate(gpu: Gpu, cfg: LlamaConfig, dtype: ElemType, maxBindingBytes = gpu.maxBindingBytes): LlamaModel {
    const table = llamaParamTable(cfg, maxBindingBytes);
    return new LlamaModel(gpu, cfg, table, new ParamBuffers(gpu, table, dtype, `weights.${dtype}`));
  }

  /**
   * Loads a HF LLaMA directory (config.json + model.safetensors or shards), one tensor at a time
   * (a 7B checkpoint never sits in host memory whole). Running out of GPU memory is one clear error.
   */
  static async load(gpu: Gpu, dir: string, dtype: ElemType): Promise<LlamaModel> {
    const cfg = loadLlamaConfig(dir);
    const st = SafetensorsModel.open(dir);
    try {
      checkLlamaTensors(st, cfg);
      const model = await withGpuErrorCheck(gpu, `${dir}: allocating the ${dtype} weights`, () => LlamaModel.allocate(gpu, cfg, dtype));
      for (const s of llamaWeightSpecs(cfg)) {
        const data = dtype === 'f32' ? st.readF32(s.name) : st.readBf16(s.name);
        model.weights.uploadTensor(model.table.get(s.name), data);
      }
      return model;
    } finally {
      st.close();
    }
  }

  /** Uploads f32 tensors by HF name (rounded to bf16 for a bf16 model). */
  uploadF32(tensors: Map<string, Float32Array>): void {
    for (const e of this.table.entries) {
      const t = tensors.get(e.spec.name);
      if (!t) throw new UserError(`missing tensor ${e.spec.name}`);
      this.weights.uploadTensor(e, this.weights.elem === 'f32' ? t : f32ArrayToBf16(t));
    }
  }

  weight(name: string): WeightRef {
    return { entry: this.table.get(name), buffers: this.weights };
  }

  /** lm_head, or the embedding when tied. */
  lmHead(): WeightRef {
    return this.weight(this.cfg.tie_word_embeddings ? 'model.embed_tokens.weight' : 'lm_head.weight');
  }

  destroy(): void {
    this.weights.destroy();
    this.ropeCos.destroy();
    this.ropeSin.destroy();
  }
}

/** Activation buffers for up to `maxRows` = B·T rows and a KV cache of `Tmax` per sequence. */
export class ForwardState {
  readonly ids: GpuBuffer;
  readonly x: GpuBuffer;
  readonly xn: GpuBuffer;
  readonly rstd: GpuBuffer;
  readonly q: GpuBuffer;
  readonly attn: GpuBuffer;
  readonly lse: GpuBuffer;
  readonly g: GpuBuffer;
  readonly u: GpuBuffer;
  readonly h: GpuBuffer;
  readonly kCache: GpuBuffer[];
  readonly vCache: GpuBuffer[];

  constructor(gpu: Gpu, d: LlamaDims, readonly maxBatch: number, readonly maxRows: number, readonly Tmax: number) {
    const f = 4;
    this.ids = createStorage(gpu, 'ids', maxRows * 4);
    this.x = createStorage(gpu, 'x', maxRows * d.H * f);
    this.xn = createStorage(gpu, 'xn', maxRows * d.H * f);
    this.rstd = createStorage(gpu, 'rstd', maxRows * f);
    this.q = createStorage(gpu, 'q', maxRows * d.nH * d.hd * f);
    this.attn = createStorage(gpu, 'attn', maxRows * d.nH * d.hd * f);
    this.lse = createStorage(gpu, 'lse', maxRows * d.nH * f);
    this.g = createStorage(gpu, 'g', maxRows * d.I * f);
    this.u = createStorage(gpu, 'u', maxRows * d.I * f);
    this.h = createStorage(gpu, 'h', maxRows * d.I * f);
    this.kCache = [];
    this.vCache = [];
    for (let l = 0; l < d.L; l++) {
      this.kCache.push(createStorage(gpu, `k_cache.${l}`, maxBatch * Tmax * d.nKV * d.hd * f));
      this.vCache.push(createStorage(gpu, `v_cache.${l}`, maxBatch * Tmax * d.nKV * d.hd * f));
    }
  }

  destroy(): void {
    for (const b of [this.ids, this.x, this.xn, this.rstd, this.q, this.attn, this.lse, this.g, this.u, this.h, ...this.kCache, ...this.vCache]) b.destroy();
  }
}

interface LayerOps {
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

/**
 * The forward pass of a model over a ForwardState: all ops (pipelines, bind groups, uniform
 * buffers) are built once here; `record` only sets sizes and encodes dispatches.
 */
export class LlamaForward {
  private constructor(
    readonly model: LlamaModel,
    readonly state: ForwardState,
    private readonly embed: EmbeddingOp,
    private readonly layers: LayerOps[],
    private readonly finalNorm: RmsNormOp,
  ) {}

  static async create(model: LlamaModel, opts: { maxBatch: number; maxSeq: number }): Promise<LlamaForward> {
    const gpu = model.gpu;
    const d = model.dims;
    if (opts.maxSeq > model.maxPositions) {
      throw new UserError(`context of ${opts.maxSeq} tokens exceeds the model's max_position_embeddings ${model.maxPositions}`);
    }
    const st = new ForwardState(gpu, d, opts.maxBatch, opts.maxBatch * opts.maxSeq, opts.maxSeq);
    const embed = await EmbeddingOp.create(gpu, model.weight('model.embed_tokens.weight'), st.ids, st.x);
    const layers: LayerOps[] = [];
    for (let l = 0; l < d.L; l++) {
      const n = layerNames(l);
      layers.push({
        inNorm: await RmsNormOp.create(gpu, model.weight(n.inNorm), st.x, st.xn, st.rstd, d.eps),
        q: await LinearOp.create(gpu, model.weight(n.q), st.xn, st.q, false),
        k: await LinearOp.create(gpu, model.weight(n.k), st.xn, st.kCache[l], false),
        v: await LinearOp.create(gpu, model.weight(n.v), st.xn, st.vCache[l], false),
        ropeQ: await RopeOp.create(gpu, st.q, model.ropeCos, model.ropeSin),
        ropeK: await RopeOp.create(gpu, st.kCache[l], model.ropeCos, model.ropeSin),
        attention: await AttentionOp.create(gpu, st.q, st.kCache[l], st.vCache[l], st.attn, st.lse),
        o: await LinearOp.create(gpu, model.weight(n.o), st.attn, st.x, true),
        postNorm: await RmsNormOp.create(gpu, model.weight(n.postNorm), st.x, st.xn, st.rstd, d.eps),
        gate: await LinearOp.create(gpu, model.weight(n.gate), st.xn, st.g, false),
        up: await LinearOp.create(gpu, model.weight(n.up), st.xn, st.u, false),
        swiglu: await SwiGluOp.create(gpu, st.g, st.u, st.h),
        down: await LinearOp.create(gpu, model.weight(n.down), st.h, st.x, true),
      });
    }
    const finalNorm = await RmsNormOp.create(gpu, model.weight('model.norm.weight'), st.x, st.xn, st.rstd, d.eps);
    return new LlamaForward(model, st, embed, layers, finalNorm);
  }

  /**
   * Encodes the forward of B sequences × T new tokens (ids already in `state.ids`, row b·T + t)
   * whose first token sits at position pos0, up to the final norm (output in `state.xn`).
   * Batched calls (B > 1, training/eval) start at pos0 = 0; decode uses B = 1.
   */
  record(rec: Recorder, B: number, T: number, pos0: number): void {
    const d = this.model.dims;
    const st = this.state;
    const R = B * T;
    if (R > st.maxRows || B > st.maxBatch) throw new Error(`forward of ${B}×${T} exceeds the state's ${st.maxBatch} sequences / ${st.maxRows} rows`);
    if (pos0 + T > st.Tmax) throw new UserError(`context full: position ${pos0 + T} exceeds ${st.Tmax} tokens`);
    if (B > 1 && pos0 !== 0) throw new Error('a batched forward (B > 1) starts at position 0');
    // Cache rows per sequence: the allocated Tmax for single-sequence decode; T when a batch of
    // padded sequences is processed whole (the cache is then just contiguous K/V rows).
    const stride = B > 1 ? T : st.Tmax;
    const kvDim = d.nKV * d.hd;
    this.embed.record(rec, R);
    for (const L of this.layers) {
      L.inNorm.record(rec, R);
      L.q.record(rec, R, 0, 0);
      // K/V rows land in the cache at row b·Tmax + pos0 + t (B = 1 when pos0 > 0).
      L.k.record(rec, R, 0, pos0 * kvDim);
      L.v.record(rec, R, 0, pos0 * kvDim);
      L.ropeQ.record(rec, { B, T, seqStride: T, rowOffset: 0, pos0, nHeads: d.nH, hd: d.hd });
      L.ropeK.record(rec, { B, T, seqStride: stride, rowOffset: pos0, pos0, nHeads: d.nKV, hd: d.hd });
      L.attention.record(rec, { B, T, Tmax: stride, pos0, nH: d.nH, nKV: d.nKV, hd: d.hd });
      L.o.record(rec, R, 0, 0);
      L.postNorm.record(rec, R);
      L.gate.record(rec, R, 0, 0);
      L.up.record(rec, R, 0, 0);
      L.swiglu.record(rec, R * d.I);
      L.down.record(rec, R, 0, 0);
    }
    this.finalNorm.record(rec, R);
  }
}

export type { ParamEntry };
