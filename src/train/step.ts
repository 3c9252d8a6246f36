/**
 * The GPU training step: forward, loss, backward and AdamW of a LLaMA, every FLOP in WGSL.
 *
 * Shape legend: B = sequences in the micro-batch, T = its padded length (the longest sample),
 * R = B·T rows, H / I / V / L as in src/model/llama.ts.
 *
 * Memory layout (llm.c style): one parameter table (src/model/param-table.ts) lays out the model
 * weights (bf16 or f32), the f32 master weights, the gradients and both Adam moments alike.
 * With --dtype f32 the model weights ARE the master weights; with bf16 the forward reads a bf16
 * copy that AdamW rewrites after every update.
 *
 * Gradient checkpointing (default): the forward keeps only each layer's input `saved[l]`
 * ([R, H], plus saved[L] = the final norm's input); the backward recomputes a layer's activations
 * from saved[l] into one shared set of scratch buffers right before differentiating it. Without
 * checkpointing every layer gets its own activation set and nothing is recomputed.
 *
 * The decoder layer's forward and backward, side by side, are in src/model/layer.ts; this file
 * orchestrates them: embed → layers (saving each input) → final norm → loss → the layers'
 * backwards in reverse (recomputing each layer's activations first with checkpointing) → the
 * embedding's gradient → AdamW.
 * The loss: logits = rmsnorm(saved[L])·lm_headᵀ in row chunks (a [R, V] block can exceed one
 * binding); the cross-entropy kernel overwrites each chunk with dlogits, which flow back at once.
 *
 * Encoders: one per micro-batch (forward + backward), the last one also holding the optimizer
 * step (grad norm, clipping, AdamW for every tensor). The host reads back 3 floats per step.
 */
import { createStorage, StagingReader, withGpuErrorCheck, type GpuBuffer } from '../gpu/buffers.ts';
import { bf16ArrayToF32, f32ArrayToBf16 } from '../util/bf16.ts';
import type { Gpu } from '../gpu/device.ts';
import { acquireGpu } from '../node/dawn.ts';
import { Recorder } from '../gpu/kernels.ts';
import { buildEmbeddingGradIndex } from '../model/embedding-index.ts';
import { UserError } from '../errors.ts';
import type { TokenizedSample } from '../data/sft.ts';
import { padBatch } from '../data/sft.ts';
import { eosTokenIds, type LlamaConfig, type LlamaDims } from '../model/config.ts';
import { loadLlamaConfig, openLlamaWeights, uploadLlamaWeights } from '../formats/hf-checkpoint.ts';
import { LlamaModel } from '../model/llama.ts';
import { EMBED_TOKENS, FINAL_NORM, lmHeadName } from '../model/weights.ts';
import {
  buildLayerBackward,
  buildLayerForward,
  recordLayerBackward,
  recordLayerForward,
  type LayerBackwardOps,
  type LayerBuffers,
  type LayerForwardOps,
  type LayerGradBuffers,
} from '../model/layer.ts';
import { ParamBuffers } from '../model/param-buffers.ts';
import type { OpCall, WeightRef } from '../ops/op.ts';
import { CrossEntropyOp } from '../ops/cross_entropy.ts';
import { EmbeddingBackwardOp, EmbeddingOp } from '../ops/embedding.ts';
import { LinearGradInputOp, LinearGradWeightOp, LinearOp } from '../ops/matmul.ts';
import { RmsNormBackwardOp, RmsNormOp } from '../ops/rmsnorm.ts';
import { SumOp } from '../ops/sum.ts';
import { logitsChunkRows } from '../model/evaluate.ts';
import { AdamW } from '../optim/adamw.ts';
import type { MicroBatch, StepResult, TrainEngine } from './engine.ts';

export interface TrainStepOptions {
  modelDir: string;
  dtype: 'bf16' | 'f32';
  /** Longest sample (tokens) the run will see: activations are sized for maxBatch × maxLen. */
  maxLen: number;
  /** Samples per micro-batch (and per evalLoss call). */
  maxBatch: number;
  checkpointing: boolean;
  weightDecay: number;
  maxGradNorm: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** Split parameters and logits as if one binding held at most this many bytes (tests of the 7B-style chunked paths). */
  bindingLimit?: number;
  /** Adam m and v storage: 'f32' (default; torch's) or 'bf16' (f32 math, stored with stochastic rounding: 4 bytes/parameter less). */
  optimDtype?: 'f32' | 'bf16';
  /** Seed of the bf16 moments' stochastic rounding (default 0); a resume must pass the same one. */
  optimSeed?: number;
  /** bf16 moments' rounding: 'stochastic' (default) or 'nearest' (only to measure the difference: bench/optim-dtype.ts). */
  optimRounding?: 'stochastic' | 'nearest';
}

/** Activations of one layer (shared by all layers with checkpointing): a layer's buffers minus its input and output. */
type LayerActs = Omit<LayerBuffers, 'xin' | 'xout'>;

/** The lm_head and loss over one chunk of logits rows; recorded once per chunk. */
interface Head {
  head: LinearOp;
  ceTrain: CrossEntropyOp;
  ceEval: CrossEntropyOp;
  dIn: LinearGradInputOp;
  dW: LinearGradWeightOp;
}

export class TrainStep implements TrainEngine {
  private constructor(
    readonly gpu: Gpu,
    readonly cfg: LlamaConfig,
    readonly model: LlamaModel,
    readonly master: ParamBuffers,
    readonly grads: ParamBuffers,
    readonly m: ParamBuffers,
    readonly v: ParamBuffers,
    private readonly opts: TrainStepOptions,
    private readonly b: ReturnType<typeof allocateShared>,
    private readonly embed: EmbeddingOp,
    private readonly layersF: LayerForwardOps[],
    private readonly layersB: LayerBackwardOps[],
    private readonly finalNorm: RmsNormOp,
    private readonly finalNormB: RmsNormBackwardOp,
    private readonly head: Head,
    private readonly chunkRows: number,
    private readonly embedB: EmbeddingBackwardOp,
    private readonly lossSum: SumOp,
    private readonly adamw: AdamW,
    private readonly stats: StagingReader,
  ) {}

  get dims(): LlamaDims {
    return this.model.dims;
  }

  static async create(opts: TrainStepOptions): Promise<TrainStep> {
    const gpu = await acquireGpu();
    return withGpuErrorCheck(gpu, 'setting up training', () => TrainStep.build(gpu, opts), 'try a smaller --max-len or --batch-size, --dtype bf16, or --checkpointing');
  }

  private static async build(gpu: Gpu, opts: TrainStepOptions): Promise<TrainStep> {
    const cfg = loadLlamaConfig(opts.modelDir);
    if (opts.maxLen > cfg.max_position_embeddings) {
      throw new UserError(`--max-len ${opts.maxLen} exceeds the model's max_position_embeddings ${cfg.max_position_embeddings}`);
    }
    const bindingLimit = Math.min(gpu.maxBindingBytes, opts.bindingLimit ?? Infinity);
    const st = openLlamaWeights(opts.modelDir, cfg);
    let model: LlamaModel;
    let master: ParamBuffers;
    try {
      model = LlamaModel.allocate(gpu, cfg, opts.dtype, bindingLimit);
      // With f32 the model weights are the masters; with bf16 the forward reads a bf16 copy of them
      // (rounded from the checkpoint as AdamW will round the updated masters).
      master = opts.dtype === 'f32' ? model.weights : new ParamBuffers(gpu, model.table, 'f32', 'master');
      uploadLlamaWeights(st, cfg, [master, model.weights]);
    } finally {
      st.close();
    }
    const table = model.table;
    const grads = new ParamBuffers(gpu, table, 'f32', 'grad');
    const optimDtype = opts.optimDtype ?? 'f32';
    const m = new ParamBuffers(gpu, table, optimDtype, 'adam.m');
    const v = new ParamBuffers(gpu, table, optimDtype, 'adam.v');

    const d = model.dims;
    const R = opts.maxBatch * opts.maxLen;
    const b = allocateShared(gpu, d, R, opts.checkpointing);
    const W = (name: string): WeightRef => ({ entry: table.get(name), buffers: model.weights });
    const G = (name: string): WeightRef => ({ entry: table.get(name), buffers: grads });

    const embed = await EmbeddingOp.create(gpu, W(EMBED_TOKENS), b.ids, b.saved[0]);
    const layersF: LayerForwardOps[] = [];
    const layersB: LayerBackwardOps[] = [];
    for (let l = 0; l < d.L; l++) {
      const acts: LayerBuffers = { ...b.acts[opts.checkpointing ? 0 : l], xin: b.saved[l], xout: b.saved[l + 1] };
      layersF.push(await buildLayerForward(gpu, l, W, model.rope, acts, d));
      layersB.push(await buildLayerBackward(gpu, l, W, G, model.rope, acts, b.grad, d));
    }
    const finalNorm = await RmsNormOp.create(gpu, W(FINAL_NORM), b.saved[d.L], b.xnF, b.rstdF, d.eps);
    const finalNormB = await RmsNormBackwardOp.create(gpu, W(FINAL_NORM), G(FINAL_NORM), b.dxnF, b.saved[d.L], b.rstdF, b.grad.dx, false);

    const headName = lmHeadName(cfg);
    const chunkRows = logitsChunkRows(bindingLimit, d.V, R);
    const logits = createStorage(gpu, 'train.logits', chunkRows * d.V * 4);
    b.all.push(logits);
    const head: Head = {
      head: await LinearOp.create(gpu, W(headName), b.xnF, logits, false),
      ceTrain: await CrossEntropyOp.create(gpu, d.V, logits, b.targets, b.loss, true),
      ceEval: await CrossEntropyOp.create(gpu, d.V, logits, b.targets, b.loss, false),
      dIn: await LinearGradInputOp.create(gpu, W(headName), logits, b.dxnF, false),
      dW: await LinearGradWeightOp.create(gpu, G(headName), logits, b.xnF),
    };
    const embedB = await EmbeddingBackwardOp.create(gpu, G(EMBED_TOKENS), b.grad.dx, { uniq: b.uniq, starts: b.starts, rows: b.rows });
    const lossSum = await SumOp.create(gpu, b.loss, b.stepStats, true);

    const adamw = await AdamW.create(
      gpu,
      table.entries.flatMap((e, tensor) =>
        e.chunks.map((c, i) => ({
          name: `${e.spec.name}#${i}`,
          n: c.elems,
          decay: e.spec.decay,
          master: { buf: master.arenas[c.arena], offset: c.offsetF32 / 4 },
          grad: { buf: grads.arenas[c.arena], offset: c.offsetF32 / 4 },
          m: { buf: m.arenas[c.arena], offset: m.offsetOf(c) / (optimDtype === 'f32' ? 4 : 2) },
          v: { buf: v.arenas[c.arena], offset: v.offsetOf(c) / (optimDtype === 'f32' ? 4 : 2) },
          ...(opts.dtype === 'bf16' ? { bf16Copy: { buf: model.weights.arenas[c.arena], offset: c.offsetBf16 / 2 } } : {}),
          // Stochastic rounding keyed by (tensor, element in the tensor): independent of the chunking.
          rngStream: tensor,
          rngOffset: c.elemStart,
        })),
      ),
      {
        beta1: opts.beta1, beta2: opts.beta2, eps: opts.eps, weightDecay: opts.weightDecay, maxGradNorm: opts.maxGradNorm,
        moments: optimDtype, momentsRounding: opts.optimRounding, seed: opts.optimSeed,
      },
    );
    const stats = new StagingReader(gpu, 16, 'train.stats');
    const step = new TrainStep(gpu, cfg, model, master, grads, m, v, opts, b, embed, layersF, layersB, finalNorm, finalNormB, head, chunkRows, embedB, lossSum, adamw, stats);
    return step;
  }

  /** Pads the micro-batch to its longest sample and uploads ids, targets and the embedding-gradient index. Returns (B, T, target count). */
  private upload(samples: TokenizedSample[]): { B: number; T: number; targets: number } {
    if (samples.length === 0 || samples.length > this.opts.maxBatch) throw new Error(`micro-batch of ${samples.length} samples (max ${this.opts.maxBatch})`);
    const { B, T, ids, targets, targetCount } = padBatch(samples, eosTokenIds(this.cfg)[0]);
    if (T > this.opts.maxLen) throw new Error(`sample of ${T} tokens exceeds max-len ${this.opts.maxLen}`);
    const q = this.gpu.device.queue;
    q.writeBuffer(this.b.ids.buffer, 0, ids);
    q.writeBuffer(this.b.targets.buffer, 0, targets);
    const index = buildEmbeddingGradIndex(ids);
    q.writeBuffer(this.b.uniq.buffer, 0, index.uniq as Uint32Array<ArrayBuffer>);
    q.writeBuffer(this.b.starts.buffer, 0, index.starts as Uint32Array<ArrayBuffer>);
    q.writeBuffer(this.b.rows.buffer, 0, index.rows as Uint32Array<ArrayBuffer>);
    this.uniqueCount = index.uniq.length;
    return { B, T, targets: targetCount };
  }
  private uniqueCount = 0;

  /** Forward through all layers and the final norm (saving what the backward needs). */
  private recordForward(rec: Recorder, B: number, T: number): void {
    const rows: OpCall = { rows: B * T };
    this.embed.record(rec, rows);
    for (const L of this.layersF) recordLayerForward(rec, L, this.dims, { B, T, pos0: 0, kvStride: T, complete: true });
    this.finalNorm.record(rec, rows);
  }

  /** Logits chunk by chunk: loss per row (and, when training, dlogits flowing into dxnF and dW_lm). */
  private recordHead(rec: Recorder, R: number, train: boolean, gradScale: number): void {
    const h = this.head;
    for (let r0 = 0; r0 < R; r0 += this.chunkRows) {
      const rows = Math.min(this.chunkRows, R - r0);
      // xnF rows [r0, r0 + rows) → the logits chunk (row 0 of the logits buffer) → loss rows [r0, ..).
      h.head.record(rec, { rows, inRow: r0 });
      if (!train) {
        h.ceEval.record(rec, { rows, outRow: r0 });
        continue;
      }
      h.ceTrain.record(rec, { rows, outRow: r0, scale: gradScale });
      h.dIn.record(rec, { rows, inRow: r0 });
      h.dW.record(rec, { rows, inRow: r0 });
    }
  }

  /** The forward reversed: final norm, then each layer's backward (after its recompute with checkpointing), then the embedding. */
  private recordBackward(rec: Recorder, B: number, T: number): void {
    this.finalNormB.record(rec, { rows: B * T });
    for (let l = this.dims.L - 1; l >= 0; l--) {
      if (this.opts.checkpointing) recordLayerForward(rec, this.layersF[l], this.dims, { B, T, pos0: 0, kvStride: T, complete: false });
      recordLayerBackward(rec, this.layersB[l], { B, T });
    }
    this.embedB.record(rec, { rows: this.uniqueCount });
  }

  async trainStep(microBatches: MicroBatch[], step: number, lr: number): Promise<StepResult> {
    if (microBatches.length === 0) throw new Error('trainStep needs at least one micro-batch');
    let tokens = 0;
    for (let i = 0; i < microBatches.length; i++) {
      const { B, T, targets } = this.upload(microBatches[i].samples);
      tokens += microBatches[i].samples.reduce((a, s) => a + s.ids.length, 0);
      const rec = new Recorder(this.gpu, `train step ${step} micro-batch ${i}`);
      if (i === 0) {
        rec.withEncoder((e) => this.grads.clear(e));
        rec.clear(this.b.stepStats);
      }
      // Each micro-batch's loss is its mean over its target tokens; the step's loss and gradient
      // are the mean over micro-batches (HF: loss / gradient_accumulation_steps).
      const scale = targets > 0 ? 1 / (targets * microBatches.length) : 0;
      this.recordForward(rec, B, T);
      this.recordHead(rec, B * T, true, scale);
      this.lossSum.record(rec, { rows: B * T, scale });
      this.recordBackward(rec, B, T);
      if (i === microBatches.length - 1) {
        this.adamw.encodeStep(rec, step, lr);
        rec.copy(this.adamw.gradNorm.norm, 0, this.b.stepStats, 4, 8);
        this.stats.copyFrom(rec, this.b.stepStats, 0, 12);
      }
      rec.submit();
    }
    const s = new Float32Array(await this.stats.read());
    return { loss: s[0], gradNorm: s[1], tokens };
  }

  async evalLoss(samples: TokenizedSample[]): Promise<{ loss: number; tokens: number }> {
    let total = 0;
    let tokens = 0;
    for (let i = 0; i < samples.length; i += this.opts.maxBatch) {
      const batch = samples.slice(i, i + this.opts.maxBatch);
      const { B, T, targets } = this.upload(batch);
      const rec = new Recorder(this.gpu, 'eval');
      rec.clear(this.b.stepStats);
      this.recordForward(rec, B, T);
      this.recordHead(rec, B * T, false, 1);
      this.lossSum.record(rec, { rows: B * T });
      this.stats.copyFrom(rec, this.b.stepStats, 0, 4);
      rec.submit();
      total += new Float32Array(await this.stats.read())[0];
      tokens += targets;
    }
    return { loss: tokens > 0 ? total / tokens : NaN, tokens };
  }

  private async exportRole(buffers: ParamBuffers): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
    const out = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const e of this.model.table.entries) {
      const data = await buffers.readTensor(e); // bf16 moments widen exactly to f32
      out.set(e.spec.name, { shape: e.spec.shape, data: data instanceof Uint16Array ? bf16ArrayToF32(data) : data });
    }
    return out;
  }

  exportWeights(): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
    return this.exportRole(this.master);
  }

  /** Adam moments as `adam_m.<name>` / `adam_v.<name>` and the f32 masters as `master.<name>` (bit-exact resume in bf16 mode). */
  async exportOptimizerState(): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
    const out = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [prefix, role] of [['adam_m.', this.m], ['adam_v.', this.v], ['master.', this.master]] as const) {
      for (const [name, t] of await this.exportRole(role)) out.set(prefix + name, t);
    }
    return out;
  }

  async importOptimizerState(state: Map<string, { shape: number[]; data: Float32Array }>): Promise<void> {
    for (const [prefix, role] of [['adam_m.', this.m], ['adam_v.', this.v], ['master.', this.master]] as const) {
      for (const e of this.model.table.entries) {
        const t = state.get(prefix + e.spec.name);
        if (!t) throw new UserError(`optimizer state: missing ${prefix}${e.spec.name}`);
        // bf16 moments: a bf16-moment checkpoint's values are bf16, so this rounding is exact.
        role.uploadTensor(e, role.elem === 'bf16' ? f32ArrayToBf16(t.data) : t.data);
        if (prefix === 'master.' && this.opts.dtype === 'bf16') {
          this.model.weights.uploadTensor(e, f32ArrayToBf16(t.data));
        }
      }
    }
  }

  peakBytes(): number {
    return this.gpu.peakAllocatedBytes;
  }

  destroy(): void {
    for (const buf of this.b.all) buf.destroy();
    this.grads.destroy();
    this.m.destroy();
    this.v.destroy();
    if (this.master !== this.model.weights) this.master.destroy();
    this.model.destroy();
    this.adamw.destroy();
    this.stats.destroy();
  }
}

/** Every activation and gradient buffer of the step, sized for R = maxBatch·maxLen rows. */
function allocateShared(gpu: Gpu, d: LlamaDims, R: number, checkpointing: boolean) {
  const all: GpuBuffer[] = [];
  const f = (label: string, elems: number) => {
    const buf = createStorage(gpu, label, elems * 4);
    all.push(buf);
    return buf;
  };
  const qd = d.nH * d.hd;
  const kvd = d.nKV * d.hd;
  const acts: LayerActs[] = [];
  for (let l = 0; l < (checkpointing ? 1 : d.L); l++) {
    const p = checkpointing ? 'act' : `act${l}`;
    acts.push({
      xn1: f(`${p}.xn1`, R * d.H),
      rstd1: f(`${p}.rstd1`, R),
      q: f(`${p}.q`, R * qd),
      k: f(`${p}.k`, R * kvd),
      v: f(`${p}.v`, R * kvd),
      attn: f(`${p}.attn`, R * qd),
      lse: f(`${p}.lse`, R * d.nH),
      xmid: f(`${p}.xmid`, R * d.H),
      xn2: f(`${p}.xn2`, R * d.H),
      rstd2: f(`${p}.rstd2`, R),
      g: f(`${p}.g`, R * d.I),
      u: f(`${p}.u`, R * d.I),
      h: f(`${p}.h`, R * d.I),
    });
  }
  const grad: LayerGradBuffers = {
    dx: f('dx', R * d.H),
    dxn: f('dxn', R * d.H),
    dh: f('dh', R * d.I),
    dg: f('dg', R * d.I),
    du: f('du', R * d.I),
    dattn: f('dattn', R * qd),
    dsum: f('dsum', R * d.nH),
    dq: f('dq', R * qd),
    dk: f('dk', R * kvd),
    dv: f('dv', R * kvd),
  };
  const saved: GpuBuffer[] = [];
  for (let l = 0; l <= d.L; l++) saved.push(f(`saved.${l}`, R * d.H));
  return {
    all,
    acts,
    saved,
    ids: f('ids', R),
    targets: f('targets', R),
    loss: f('loss', R),
    uniq: f('embed.uniq', R),
    starts: f('embed.starts', R + 1),
    rows: f('embed.rows', R),
    xnF: f('xnF', R * d.H),
    rstdF: f('rstdF', R),
    dxnF: f('dxnF', R * d.H),
    grad,
    stepStats: f('step.stats', 4),
  };
}
