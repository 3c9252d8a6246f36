/**
 * LLaMA (HF `LlamaForCausalLM` layout and names) on the GPU: weights, and the forward pass used
 * for prefill, KV-cache decode and evaluation.
 *
 * Shape legend: B = batch, T = tokens in this call, Tmax = KV-cache length per sequence,
 * H = hidden, I = intermediate, nH / nKV = query / key-value heads, hd = head dim, V = vocab,
 * R = B·T rows. Activations are row-major f32 [R, features].
 *
 * embed → L decoder layers (src/model/layer.ts; the residual stream in place, K/V written straight
 * into each layer's cache at position pos0) → xn = rmsnorm(x, model.norm); logits = xn·lm_headᵀ
 * for the rows the caller asks for. Loading a checkpoint directory is the Node side's job
 * (src/formats/hf-checkpoint.ts): this file needs only a GPUDevice.
 */
import { createStorage, createStorageFrom, type GpuBuffer } from '../gpu/buffers.ts';
import type { Gpu } from '../gpu/device.ts';
import type { Recorder } from '../gpu/kernels.ts';
import { UserError } from '../errors.ts';
import { llamaDims, type LlamaConfig, type LlamaDims } from './config.ts';
import { ropeTable } from './rope-table.ts';
import { llamaParamTable, type ParamTable } from './param-table.ts';
import { ParamBuffers, type ElemType } from './param-buffers.ts';
import { EMBED_TOKENS, FINAL_NORM, lmHeadName } from './weights.ts';
import type { OpCall, WeightRef } from '../ops/op.ts';
import { EmbeddingOp } from '../ops/embedding.ts';
import { RmsNormOp } from '../ops/rmsnorm.ts';
import { buildLayerForward, recordLayerForward, type LayerForwardOps, type LayerLora, type RopeTables } from './layer.ts';
import { adapterRefsIn, LORA_MODULES, loraScale, type GpuAdapter, type LayerRole, type LoraConfig } from './lora.ts';
import type { LoraScratch } from '../ops/lora.ts';

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

  /** A LoRA adapter every forward of this model applies (unmerged, as PEFT's PeftModel), or none. */
  adapter: GpuAdapter | null = null;

  get dtype(): ElemType {
    return this.weights.elem;
  }

  /**
   * An empty model (zeros) of this config: callers upload the weights (from a checkpoint directory:
   * src/formats/hf-checkpoint.ts). A smaller `maxBindingBytes` than the device's splits tensors into
   * more chunks (the tests of the 7B-style chunked paths).
   */
  static allocate(gpu: Gpu, cfg: LlamaConfig, dtype: ElemType, maxBindingBytes = gpu.maxBindingBytes): LlamaModel {
    const table = llamaParamTable(cfg, maxBindingBytes);
    return new LlamaModel(gpu, cfg, table, new ParamBuffers(gpu, table, dtype, `weights.${dtype}`));
  }

  weight(name: string): WeightRef {
    return { entry: this.table.get(name), buffers: this.weights };
  }

  /** lm_head, or the embedding when tied. */
  lmHead(): WeightRef {
    return this.weight(lmHeadName(this.cfg));
  }

  get rope(): RopeTables {
    return { cos: this.ropeCos, sin: this.ropeSin };
  }

  destroy(): void {
    this.weights.destroy();
    this.adapter?.weights.destroy();
    this.ropeCos.destroy();
    this.ropeSin.destroy();
  }
}

/**
 * How much of a batch one forward pass may hold on this device. Every buffer that grows with
 * batch × length × width must fit one storage binding (lavapipe: 128 MiB; a 7B's [2048, 11008] f32
 * MLP activation is 90 MiB): the activations are [rows, width] with width up to max(H, I, nH·hd),
 * and each layer's K/V buffer is [B, Tmax, nKV·hd]. The logits are chunked separately
 * (logitsChunkRows in src/model/evaluate.ts).
 */
export function rowsPerPass(d: LlamaDims, maxBindingBytes: number): number {
  return Math.floor(maxBindingBytes / (4 * Math.max(d.H, d.I, d.nH * d.hd, d.nKV * d.hd)));
}

/**
 * Sequences of `seqLen` rows one pass holds, at most `want`; a sequence that alone does not fit is
 * one clear error naming `what` (the option that sets the length).
 */
export function sequencesPerPass(d: LlamaDims, maxBindingBytes: number, seqLen: number, want: number, what: string): number {
  const rows = rowsPerPass(d, maxBindingBytes);
  if (seqLen > rows) {
    const width = Math.max(d.H, d.I, d.nH * d.hd, d.nKV * d.hd);
    throw new UserError(
      `${what} of ${seqLen} tokens needs ${seqLen * width * 4} bytes in one activation buffer (${width} f32 values a token), ` +
        `but this device binds at most ${maxBindingBytes} bytes (maxStorageBufferBindingSize): at most ${rows} tokens fit`,
    );
  }
  return Math.max(1, Math.min(want, Math.floor(rows / seqLen)));
}

/** The memory roles of a forward's buffers (the planner's rows, src/train/plan.ts). */
export type ForwardRole = 'kv_cache' | 'activations' | 'lora_buffers';

/**
 * The buffers of a ForwardState: label, bytes and memory role. The one list the state allocates
 * and the memory planner adds up.
 */
export function forwardStateLayout(d: LlamaDims, maxBatch: number, maxRows: number, Tmax: number, lora?: LoraConfig): { label: string; bytes: number; role: ForwardRole }[] {
  const f = 4;
  const out: { label: string; bytes: number; role: ForwardRole }[] = [];
  const act = (label: string, width: number) => out.push({ label, bytes: maxRows * width * f, role: 'activations' });
  out.push({ label: 'ids', bytes: maxBatch * Tmax * 4, role: 'activations' });
  act('x', d.H);
  act('xn', d.H);
  act('rstd', 1);
  act('q', d.nH * d.hd);
  act('attn', d.nH * d.hd);
  act('lse', d.nH);
  act('g', d.I);
  act('u', d.I);
  act('h', d.I);
  for (let l = 0; l < d.L; l++) {
    out.push({ label: `k_cache.${l}`, bytes: maxBatch * Tmax * d.nKV * d.hd * f, role: 'kv_cache' });
    out.push({ label: `v_cache.${l}`, bytes: maxBatch * Tmax * d.nKV * d.hd * f, role: 'kv_cache' });
  }
  if (lora) {
    for (const m of lora.targets) out.push({ label: `lora_z.${m}`, bytes: maxRows * lora.r * f, role: 'lora_buffers' });
    out.push({ label: 'lora.xs', bytes: maxRows * Math.max(d.H, d.I, d.nH * d.hd) * f, role: 'lora_buffers' });
  }
  return out;
}

/**
 * Activation buffers for one pass of up to `maxRows` rows, ids for up to `maxBatch`·`Tmax` tokens,
 * and a KV cache of `Tmax` rows for each of `maxBatch` sequences (forwardStateLayout).
 */
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
  /** With an adapter: z [maxRows, r] per adapted projection (shared by the layers: inference keeps none), and xs scratch. */
  readonly loraZ: Partial<Record<LayerRole, GpuBuffer>> = {};
  readonly loraScratch: LoraScratch | undefined;
  private readonly all: GpuBuffer[];

  constructor(gpu: Gpu, d: LlamaDims, readonly maxBatch: number, readonly maxRows: number, readonly Tmax: number, lora?: LoraConfig) {
    const byLabel = new Map<string, GpuBuffer>();
    for (const e of forwardStateLayout(d, maxBatch, maxRows, Tmax, lora)) byLabel.set(e.label, createStorage(gpu, e.label, e.bytes));
    this.all = [...byLabel.values()];
    const b = (label: string) => byLabel.get(label)!;
    this.ids = b('ids');
    this.x = b('x');
    this.xn = b('xn');
    this.rstd = b('rstd');
    this.q = b('q');
    this.attn = b('attn');
    this.lse = b('lse');
    this.g = b('g');
    this.u = b('u');
    this.h = b('h');
    this.kCache = Array.from({ length: d.L }, (_, l) => b(`k_cache.${l}`));
    this.vCache = Array.from({ length: d.L }, (_, l) => b(`v_cache.${l}`));
    if (lora) {
      for (const m of lora.targets) this.loraZ[LORA_MODULES[m]] = b(`lora_z.${m}`);
      // Inference has no backward: the backward's scratch fields alias xs, unused.
      this.loraScratch = { xs: b('lora.xs'), dxs: b('lora.xs'), dz: b('lora.xs') };
    }
  }

  destroy(): void {
    for (const buf of this.all) buf.destroy();
  }
}

/**
 * The rows, batch and context a LlamaForward.create with these options allocates: the one rule the
 * forward and the memory planner share.
 */
export function forwardShape(d: LlamaDims, maxBindingBytes: number, maxBatch: number, maxSeq: number): { batch: number; maxRows: number } {
  const perPass = rowsPerPass(d, maxBindingBytes);
  const batch = maxBatch === 1 ? 1 : sequencesPerPass(d, maxBindingBytes, maxSeq, maxBatch, 'a sequence');
  return { batch, maxRows: Math.min(batch * maxSeq, perPass) };
}

/**
 * The forward pass of a model over a ForwardState: all ops (pipelines, bind groups) are built once
 * here; `record` only encodes dispatches with their sizes.
 */
export class LlamaForward {
  private constructor(
    readonly model: LlamaModel,
    readonly state: ForwardState,
    private readonly embed: EmbeddingOp,
    private readonly layers: LayerForwardOps[],
    private readonly finalNorm: RmsNormOp,
  ) {}

  /**
   * Up to `maxBatch` sequences of up to `maxSeq` tokens, as many as one pass may hold
   * (`sequencesPerPass`; `state.maxBatch` says how many that is: callers with more run several
   * passes). A single sequence may be longer than one pass's rows when its K/V cache fits: its
   * forward then runs in row chunks (prefill in passes).
   */
  static async create(model: LlamaModel, opts: { maxBatch: number; maxSeq: number; adapter?: GpuAdapter }): Promise<LlamaForward> {
    const gpu = model.gpu;
    const d = model.dims;
    if (opts.maxSeq > model.maxPositions) {
      throw new UserError(`context of ${opts.maxSeq} tokens exceeds the model's max_position_embeddings ${model.maxPositions}`);
    }
    const kvBytes = opts.maxSeq * d.nKV * d.hd * 4;
    if (kvBytes > gpu.maxBindingBytes) {
      throw new UserError(`a KV cache of ${opts.maxSeq} tokens needs ${kvBytes} bytes a layer, but this device binds at most ${gpu.maxBindingBytes} bytes (maxStorageBufferBindingSize): use a shorter context`);
    }
    const { batch, maxRows } = forwardShape(d, gpu.maxBindingBytes, opts.maxBatch, opts.maxSeq);
    const adapter = opts.adapter ?? model.adapter ?? undefined;
    const st = new ForwardState(gpu, d, batch, maxRows, opts.maxSeq, adapter?.config);
    const lora: LayerLora | undefined = adapter && st.loraScratch
      ? {
          adapter: adapterRefsIn(adapter.weights),
          dropout: 0,
          scale: loraScale(adapter.config),
          scratch: st.loraScratch,
        }
      : undefined;
    const embed = await EmbeddingOp.create(gpu, model.weight(EMBED_TOKENS), st.ids, st.x);
    const layers: LayerForwardOps[] = [];
    for (let l = 0; l < d.L; l++) {
      // The residual stream runs in place (xin = xmid = xout); K/V go straight into layer l's cache.
      const x = st.x;
      const buffers = { xin: x, xn1: st.xn, rstd1: st.rstd, q: st.q, k: st.kCache[l], v: st.vCache[l], attn: st.attn, lse: st.lse, xmid: x, xn2: st.xn, rstd2: st.rstd, g: st.g, u: st.u, h: st.h, xout: x, loraZ: st.loraZ };
      layers.push(await buildLayerForward(gpu, l, (name) => model.weight(name), model.rope, buffers, d, lora));
    }
    const finalNorm = await RmsNormOp.create(gpu, model.weight(FINAL_NORM), st.x, st.xn, st.rstd, d.eps);
    return new LlamaForward(model, st, embed, layers, finalNorm);
  }

  /**
   * Encodes the forward of B sequences × T new tokens (ids already in `state.ids`, row b·T + t)
   * whose first token sits at position pos0, up to the final norm (output in `state.xn`).
   * Batched calls (B > 1, training/eval) start at pos0 = 0; decode uses B = 1. One sequence longer
   * than a pass's rows runs in chunks of rows, each chunk through all layers (its K/V cached for the
   * next): `state.xn` then holds the last chunk, and the return value is the index of the token in
   * xn's row 0 (0 when the call fit one pass).
   */
  record(rec: Recorder, B: number, T: number, pos0: number): number {
    const d = this.model.dims;
    const st = this.state;
    if (B > st.maxBatch) throw new Error(`forward of ${B} sequences exceeds the state's ${st.maxBatch}`);
    if (B > 1 && B * T > st.maxRows) throw new Error(`forward of ${B}×${T} exceeds the state's ${st.maxRows} rows`);
    if (pos0 + T > st.Tmax) throw new UserError(`context full: position ${pos0 + T} exceeds ${st.Tmax} tokens`);
    if (B > 1 && pos0 !== 0) throw new Error('a batched forward (B > 1) starts at position 0');
    // Cache rows per sequence: the allocated Tmax for single-sequence decode; T when a batch of
    // padded sequences is processed whole (the cache is then just contiguous K/V rows).
    const stride = B > 1 ? T : st.Tmax;
    let t0 = 0;
    for (;;) {
      const Tc = B > 1 ? T : Math.min(T - t0, st.maxRows);
      const rows: OpCall = { rows: B * Tc, inRow: t0 };
      this.embed.record(rec, rows);
      for (const L of this.layers) recordLayerForward(rec, L, d, { B, T: Tc, pos0: pos0 + t0, kvStride: stride, complete: true });
      this.finalNorm.record(rec, { rows: B * Tc });
      if (t0 + Tc >= T) return t0;
      t0 += Tc;
    }
  }
}
