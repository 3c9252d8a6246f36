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
import { padBatch, targetCount } from '../data/sft.ts';
import { eosTokenIds, type LlamaConfig, type LlamaDims } from '../model/config.ts';
import { loadLlamaConfig, openLlamaWeights, uploadLlamaWeights } from '../formats/hf-checkpoint.ts';
import { LlamaModel, sequencesPerPass } from '../model/llama.ts';
import { EMBED_TOKENS, FINAL_NORM, layerTensorNames, lmHeadName } from '../model/weights.ts';
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
import type { ParamTable } from '../model/param-table.ts';
import { adapterNames, adapterRefsIn, LORA_MODULES, loraParamTable, loraScale, type LoraConfig, type LoraModule } from '../model/lora.ts';
import { fillSynthetic, syntheticAdapter, syntheticBase } from '../model/synthetic.ts';
import type { AdapterRefs, LoraScratch } from '../ops/lora.ts';
import { dropoutCallKey } from '../ops/dropout.ts';
import { Rng } from '../util/random.ts';
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
  /** The HF checkpoint to start from ('' with `synthetic`). */
  modelDir: string;
  /** Instead of a checkpoint: weights generated on the GPU from a seed (src/model/synthetic.ts), for tests and benchmarks at sizes no file is committed for. */
  synthetic?: { config: LlamaConfig; seed: number };
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
  /**
   * LoRA (src/model/lora.ts): the base weights stay frozen in `dtype` (no master, gradient or
   * moments) and only the adapter trains, in f32 with AdamW. `initial`: the adapter to start from
   * (PEFT names, f32), else A ~ kaiming-uniform (bound 1/√in, from `seed`) and B = 0, as PEFT.
   * `seed` also keys the dropout masks.
   */
  lora?: { config: LoraConfig; seed: number; initial?: ReadonlyMap<string, Float32Array> | 'synthetic' };
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
  /** Absent when lm_head is frozen (LoRA). */
  dW?: LinearGradWeightOp;
}

export class TrainStep implements TrainEngine {
  private constructor(
    readonly gpu: Gpu,
    readonly cfg: LlamaConfig,
    readonly model: LlamaModel,
    /** The trained parameters' table: the model's, or the adapter's with LoRA. */
    readonly trainTable: ParamTable,
    /** The f32 values AdamW updates: the model's masters, or the adapter. */
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
    private readonly embedB: EmbeddingBackwardOp | null,
    private readonly lossSum: SumOp,
    private readonly adamw: AdamW,
    private readonly stats: StagingReader,
    /** Sequences per pass: a micro-batch of more runs in several passes (every activation buffer must fit one binding). */
    readonly passBatch: number,
  ) {}

  get dims(): LlamaDims {
    return this.model.dims;
  }

  static async create(opts: TrainStepOptions): Promise<TrainStep> {
    const gpu = await acquireGpu();
    return withGpuErrorCheck(gpu, 'setting up training', () => TrainStep.build(gpu, opts), 'try a smaller --max-len or --batch-size, --dtype bf16, or --checkpointing');
  }

  private static async build(gpu: Gpu, opts: TrainStepOptions): Promise<TrainStep> {
    const synthetic = opts.synthetic;
    if (synthetic && opts.modelDir !== '') throw new Error('TrainStep: give modelDir or synthetic, not both');
    const cfg = synthetic ? synthetic.config : loadLlamaConfig(opts.modelDir);
    if (opts.maxLen > cfg.max_position_embeddings) {
      throw new UserError(`--max-len ${opts.maxLen} exceeds the model's max_position_embeddings ${cfg.max_position_embeddings}`);
    }
    const bindingLimit = Math.min(gpu.maxBindingBytes, opts.bindingLimit ?? Infinity);
    const lora = opts.lora;
    const st = synthetic ? null : openLlamaWeights(opts.modelDir, cfg);
    let model: LlamaModel;
    let master: ParamBuffers;
    try {
      model = LlamaModel.allocate(gpu, cfg, opts.dtype, bindingLimit);
      // With f32 the model weights are the masters; with bf16 the forward reads a bf16 copy of them
      // (rounded from the checkpoint as AdamW will round the updated masters). A LoRA base is frozen:
      // its weights only.
      master = lora ? model.weights : opts.dtype === 'f32' ? model.weights : new ParamBuffers(gpu, model.table, 'f32', 'master');
      if (st) uploadLlamaWeights(st, cfg, [master, model.weights]);
      else {
        const gens = syntheticBase(cfg, synthetic!.seed);
        for (const target of new Set([master, model.weights])) await fillSynthetic(gpu, target, gens);
      }
    } finally {
      st?.close();
    }
    const table = lora ? loraParamTable(cfg, lora.config, bindingLimit) : model.table;
    if (lora) {
      master = new ParamBuffers(gpu, table, 'f32', 'lora');
      if (lora.initial === 'synthetic') {
        const gens = syntheticAdapter(cfg, lora.config, lora.seed, (layer, module) => {
          const base = layerTensorNames(layer)[LORA_MODULES[module as LoraModule]];
          return { ...adapterNames(base), in: model.table.get(base).cols };
        });
        await fillSynthetic(gpu, master, gens);
      } else initAdapter(master, lora.seed, lora.initial);
    }
    const grads = new ParamBuffers(gpu, table, 'f32', 'grad');
    const optimDtype = opts.optimDtype ?? 'f32';
    const m = new ParamBuffers(gpu, table, optimDtype, 'adam.m');
    const v = new ParamBuffers(gpu, table, optimDtype, 'adam.v');

    const d = model.dims;
    const passBatch = sequencesPerPass(d, bindingLimit, opts.maxLen, opts.maxBatch, '--max-len');
    const R = passBatch * opts.maxLen;
    const b = allocateShared(gpu, d, R, opts.checkpointing, lora?.config);
    const W = (name: string): WeightRef => ({ entry: model.table.get(name), buffers: model.weights });
    const G = lora ? null : (name: string): WeightRef => ({ entry: table.get(name), buffers: grads });
    const layerLora = lora && b.loraScratch
      ? { adapter: adapterRefsIn(master), grad: adapterRefsIn(grads), dropout: lora.config.dropout, scale: loraScale(lora.config), scratch: b.loraScratch }
      : undefined;

    const embed = await EmbeddingOp.create(gpu, W(EMBED_TOKENS), b.ids, b.saved[0]);
    const layersF: LayerForwardOps[] = [];
    const layersB: LayerBackwardOps[] = [];
    for (let l = 0; l < d.L; l++) {
      const acts: LayerBuffers = { ...b.acts[opts.checkpointing ? 0 : l], xin: b.saved[l], xout: b.saved[l + 1] };
      layersF.push(await buildLayerForward(gpu, l, W, model.rope, acts, d, layerLora));
      layersB.push(await buildLayerBackward(gpu, l, W, G, model.rope, acts, b.grad, d, layerLora));
    }
    const finalNorm = await RmsNormOp.create(gpu, W(FINAL_NORM), b.saved[d.L], b.xnF, b.rstdF, d.eps);
    const finalNormB = await RmsNormBackwardOp.create(gpu, W(FINAL_NORM), G ? G(FINAL_NORM) : null, b.dxnF, b.saved[d.L], b.rstdF, b.grad.dx, false);

    const headName = lmHeadName(cfg);
    const chunkRows = logitsChunkRows(bindingLimit, d.V, R);
    const logits = createStorage(gpu, 'train.logits', chunkRows * d.V * 4);
    b.all.push(logits);
    const head: Head = {
      head: await LinearOp.create(gpu, W(headName), b.xnF, logits, false),
      ceTrain: await CrossEntropyOp.create(gpu, d.V, logits, b.targets, b.loss, true),
      ceEval: await CrossEntropyOp.create(gpu, d.V, logits, b.targets, b.loss, false),
      dIn: await LinearGradInputOp.create(gpu, W(headName), logits, b.dxnF, false),
      dW: G ? await LinearGradWeightOp.create(gpu, G(headName), logits, b.xnF) : undefined,
    };
    const embedB = G ? await EmbeddingBackwardOp.create(gpu, G(EMBED_TOKENS), b.grad.dx, { uniq: b.uniq, starts: b.starts, rows: b.rows }) : null;
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
          ...(opts.dtype === 'bf16' && !lora ? { bf16Copy: { buf: model.weights.arenas[c.arena], offset: c.offsetBf16 / 2 } } : {}),
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
    const step = new TrainStep(gpu, cfg, model, table, master, grads, m, v, opts, b, embed, layersF, layersB, finalNorm, finalNormB, head, chunkRows, embedB, lossSum, adamw, stats, passBatch);
    return step;
  }

  /** Pads one pass's samples to the longest and uploads ids, targets and the embedding-gradient index. Returns (B, T, target count). */
  private upload(samples: TokenizedSample[]): { B: number; T: number; targets: number } {
    if (samples.length === 0 || samples.length > this.passBatch) throw new Error(`pass of ${samples.length} samples (max ${this.passBatch})`);
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
  private recordForward(rec: Recorder, B: number, T: number, key = 0): void {
    const rows: OpCall = { rows: B * T };
    this.embed.record(rec, rows);
    for (const L of this.layersF) recordLayerForward(rec, L, this.dims, { B, T, pos0: 0, kvStride: T, complete: true, key });
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
      h.dW?.record(rec, { rows, inRow: r0 });
    }
  }

  /** The forward reversed: final norm, then each layer's backward (after its recompute with checkpointing), then the embedding. */
  private recordBackward(rec: Recorder, B: number, T: number, key: number): void {
    this.finalNormB.record(rec, { rows: B * T });
    for (let l = this.dims.L - 1; l >= 0; l--) {
      if (this.opts.checkpointing) recordLayerForward(rec, this.layersF[l], this.dims, { B, T, pos0: 0, kvStride: T, complete: false, key });
      recordLayerBackward(rec, this.layersB[l], { B, T, key });
    }
    this.embedB?.record(rec, { rows: this.uniqueCount });
  }

  /** The samples in passes of at most passBatch. */
  private passes(samples: TokenizedSample[]): TokenizedSample[][] {
    const out: TokenizedSample[][] = [];
    for (let i = 0; i < samples.length; i += this.passBatch) out.push(samples.slice(i, i + this.passBatch));
    return out;
  }

  async trainStep(microBatches: MicroBatch[], step: number, lr: number): Promise<StepResult> {
    if (microBatches.length === 0) throw new Error('trainStep needs at least one micro-batch');
    let tokens = 0;
    for (let i = 0; i < microBatches.length; i++) {
      const samples = microBatches[i].samples;
      if (samples.length > this.opts.maxBatch) throw new Error(`micro-batch of ${samples.length} samples (max ${this.opts.maxBatch})`);
      tokens += samples.reduce((a, s) => a + s.ids.length, 0);
      // Each micro-batch's loss is its mean over its target tokens; the step's loss and gradient
      // are the mean over micro-batches (HF: loss / gradient_accumulation_steps). A micro-batch
      // run in several passes scales every pass by its whole target count: the same sum.
      const targets = samples.reduce((a, s) => a + targetCount(s), 0);
      const scale = targets > 0 ? 1 / (targets * microBatches.length) : 0;
      const passes = this.passes(samples);
      passes.forEach((pass, p) => {
        const { B, T } = this.upload(pass);
        const rec = new Recorder(this.gpu, `train step ${step} micro-batch ${i} pass ${p}`);
        if (i === 0 && p === 0) {
          rec.withEncoder((e) => this.grads.clear(e));
          rec.clear(this.b.stepStats);
        }
        // The dropout masks of this pass (the same in its forward, recompute and backward).
        const key = this.opts.lora ? dropoutCallKey(this.opts.lora.seed, step, i, p) : 0;
        this.recordForward(rec, B, T, key);
        this.recordHead(rec, B * T, true, scale);
        this.lossSum.record(rec, { rows: B * T, scale });
        this.recordBackward(rec, B, T, key);
        if (i === microBatches.length - 1 && p === passes.length - 1) {
          this.adamw.encodeStep(rec, step, lr);
          rec.copy(this.adamw.gradNorm.norm, 0, this.b.stepStats, 4, 8);
          this.stats.copyFrom(rec, this.b.stepStats, 0, 12);
        }
        rec.submit();
      });
    }
    const s = new Float32Array(await this.stats.read());
    return { loss: s[0], gradNorm: s[1], tokens };
  }

  async evalLoss(samples: TokenizedSample[]): Promise<{ loss: number; tokens: number }> {
    let total = 0;
    let tokens = 0;
    for (const pass of this.passes(samples)) {
      const { B, T, targets } = this.upload(pass);
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
    for (const e of this.trainTable.entries) {
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
      for (const e of this.trainTable.entries) {
        const t = state.get(prefix + e.spec.name);
        if (!t) throw new UserError(`optimizer state: missing ${prefix}${e.spec.name}`);
        // bf16 moments: a bf16-moment checkpoint's values are bf16, so this rounding is exact.
        role.uploadTensor(e, role.elem === 'bf16' ? f32ArrayToBf16(t.data) : t.data);
        if (prefix === 'master.' && this.opts.dtype === 'bf16' && !this.opts.lora) {
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

/** The memory roles of a training step's buffers (the planner's rows, src/train/plan.ts). */
export type ActivationRole = 'saved_activations' | 'layer_working_set' | 'activation_gradients' | 'lora_buffers' | 'batch';

/**
 * Every activation and gradient buffer of the step, sized for the R = passBatch·maxLen rows of one
 * pass: label, f32 elements and memory role. The one list `allocateShared` allocates and the memory
 * planner adds up.
 */
export function trainBufferLayout(d: LlamaDims, R: number, checkpointing: boolean, lora?: LoraConfig): { label: string; elems: number; role: ActivationRole }[] {
  const out: { label: string; elems: number; role: ActivationRole }[] = [];
  const add = (role: ActivationRole, label: string, elems: number) => out.push({ label, elems, role });
  const qd = d.nH * d.hd;
  const kvd = d.nKV * d.hd;
  for (let l = 0; l < (checkpointing ? 1 : d.L); l++) {
    const p = checkpointing ? 'act' : `act${l}`;
    const widths: [string, number][] = [['xn1', d.H], ['rstd1', 1], ['q', qd], ['k', kvd], ['v', kvd], ['attn', qd], ['lse', d.nH], ['xmid', d.H], ['xn2', d.H], ['rstd2', 1], ['g', d.I], ['u', d.I], ['h', d.I]];
    for (const [name, w] of widths) add('layer_working_set', `${p}.${name}`, R * w);
    // LoRA: z = s·dropout(x)·Aᵀ of each target, [R, r], kept for the backward (recomputed with the layer).
    for (const m of lora?.targets ?? []) add('lora_buffers', `${p}.lora_z.${m}`, R * lora!.r);
  }
  for (const [name, w] of [['dx', d.H], ['dxn', d.H], ['dh', d.I], ['dg', d.I], ['du', d.I], ['dattn', qd], ['dsum', d.nH], ['dq', qd], ['dk', kvd], ['dv', kvd], ['dxnF', d.H]] as const) {
    add('activation_gradients', name, R * w);
  }
  for (let l = 0; l <= d.L; l++) add('saved_activations', `saved.${l}`, R * d.H);
  if (lora) {
    const widest = Math.max(d.H, d.I, qd);
    add('lora_buffers', 'lora.xs', R * widest);
    add('lora_buffers', 'lora.dxs', R * widest);
    add('lora_buffers', 'lora.dz', R * lora.r);
  }
  for (const [name, n] of [['ids', R], ['targets', R], ['loss', R], ['embed.uniq', R], ['embed.starts', R + 1], ['embed.rows', R], ['xnF', R * d.H], ['rstdF', R], ['step.stats', 4]] as const) {
    add('batch', name, n);
  }
  return out;
}

/** Allocates trainBufferLayout's buffers and hands them out by role in the step. */
function allocateShared(gpu: Gpu, d: LlamaDims, R: number, checkpointing: boolean, lora?: LoraConfig) {
  const all: GpuBuffer[] = [];
  const byLabel = new Map<string, GpuBuffer>();
  for (const e of trainBufferLayout(d, R, checkpointing, lora)) {
    const buf = createStorage(gpu, e.label, e.elems * 4);
    all.push(buf);
    byLabel.set(e.label, buf);
  }
  const f = (label: string) => byLabel.get(label)!;
  const acts: LayerActs[] = [];
  for (let l = 0; l < (checkpointing ? 1 : d.L); l++) {
    const p = checkpointing ? 'act' : `act${l}`;
    acts.push({
      xn1: f(`${p}.xn1`),
      rstd1: f(`${p}.rstd1`),
      q: f(`${p}.q`),
      k: f(`${p}.k`),
      v: f(`${p}.v`),
      attn: f(`${p}.attn`),
      lse: f(`${p}.lse`),
      xmid: f(`${p}.xmid`),
      xn2: f(`${p}.xn2`),
      rstd2: f(`${p}.rstd2`),
      g: f(`${p}.g`),
      u: f(`${p}.u`),
      h: f(`${p}.h`),
      loraZ: lora ? Object.fromEntries(lora.targets.map((m) => [LORA_MODULES[m], f(`${p}.lora_z.${m}`)])) : undefined,
    });
  }
  const grad: LayerGradBuffers = { dx: f('dx'), dxn: f('dxn'), dh: f('dh'), dg: f('dg'), du: f('du'), dattn: f('dattn'), dsum: f('dsum'), dq: f('dq'), dk: f('dk'), dv: f('dv') };
  const loraScratch: LoraScratch | undefined = lora ? { xs: f('lora.xs'), dxs: f('lora.dxs'), dz: f('lora.dz') } : undefined;
  return {
    all,
    acts,
    saved: Array.from({ length: d.L + 1 }, (_, l) => f(`saved.${l}`)),
    ids: f('ids'),
    targets: f('targets'),
    loss: f('loss'),
    uniq: f('embed.uniq'),
    starts: f('embed.starts'),
    rows: f('embed.rows'),
    xnF: f('xnF'),
    rstdF: f('rstdF'),
    dxnF: f('dxnF'),
    grad,
    loraScratch,
    stepStats: f('step.stats'),
  };
}

/**
 * Fills the adapter: `initial` when given, else PEFT's initialisation: A ~ U(−1/√in, 1/√in)
 * (kaiming_uniform_ with a = √5), B = 0, from `seed` in model order.
 */
function initAdapter(adapter: ParamBuffers, seed: number, initial?: ReadonlyMap<string, Float32Array>): void {
  const rng = new Rng(seed);
  for (const e of adapter.table.entries) {
    const n = e.rowsTotal * e.cols;
    let data = initial?.get(e.spec.name);
    if (initial && !data) throw new UserError(`adapter: missing tensor ${e.spec.name}`);
    if (!data) {
      data = new Float32Array(n);
      if (e.spec.name.endsWith('.lora_A.weight')) {
        const bound = 1 / Math.sqrt(e.cols);
        for (let i = 0; i < n; i++) data[i] = (2 * rng.uniform() - 1) * bound;
      }
    }
    adapter.uploadTensor(e, data);
  }
}

