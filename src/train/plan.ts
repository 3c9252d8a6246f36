/**
 * The memory planner: the GPU bytes of every role of a training run and of sampling, computed
 * before anything is allocated, from the same layouts and tables the allocations use
 * (trainBufferLayout in src/train/step.ts, forwardStateLayout in src/model/llama.ts, the parameter
 * tables of src/model/param-table.ts and src/model/lora.ts), rounded as createStorage rounds.
 * It counts what wgpu-char allocates (Gpu.allocatedBytes); the driver's own overhead, the uniform
 * pages and staging buffers (a few hundred KiB) are not in it.
 */
import { storageBytes } from '../gpu/buffers.ts';
import { formatBytes } from '../util/bytes.ts';

export { formatBytes };
import { llamaDims, type LlamaConfig } from '../model/config.ts';
import { logitsChunkRows } from '../model/evaluate.ts';
import { forwardShape, forwardStateLayout, sequencesPerPass } from '../model/llama.ts';
import { loraParamTable, type LoraConfig } from '../model/lora.ts';
import { llamaParamTable, type ParamTable } from '../model/param-table.ts';
import { trainBufferLayout, type TrainStepOptions } from './step.ts';
import { batchEngineLayout } from '../gen/batch-engine.ts';
import { freemem } from 'node:os';
import { acquireGpu } from '../node/dawn.ts';
import { loadLlamaConfig } from '../formats/hf-config.ts';

export interface TrainPlanOptions {
  dtype: 'bf16' | 'f32';
  /** Adam m and v storage (default f32). */
  optimDtype?: 'bf16' | 'f32';
  maxLen: number;
  batch: number;
  checkpointing: boolean;
  lora?: LoraConfig;
  maxBindingBytes: number;
}

export interface SamplePlanOptions {
  dtype: 'bf16' | 'f32';
  /** Context length (KV cache rows). */
  context: number;
  lora?: LoraConfig;
  maxBindingBytes: number;
}

/** Role → bytes, and `total`. Key order is the print order. */
export type MemoryPlan = Record<string, number> & { total: number };

function arenaBytes(table: ParamTable, elem: 'f32' | 'bf16'): number {
  return (elem === 'f32' ? table.arenaBytesF32 : table.arenaBytesBf16).reduce((a, b) => a + storageBytes(b), 0);
}

function ropeBytes(cfg: LlamaConfig): number {
  const d = llamaDims(cfg);
  return 2 * storageBytes(cfg.max_position_embeddings * (d.hd / 2) * 4);
}

/** The grad-norm kernel's partial sums (src/optim/clip.ts: one per 256 × 8 elements of each tensor chunk) and AdamW's 16-byte placeholder. */
function optimizerScratchBytes(table: ParamTable): number {
  let partials = 0;
  for (const e of table.entries) for (const c of e.chunks) partials += Math.ceil(c.elems / (256 * 8));
  return storageBytes(Math.max(1, partials) * 4) + storageBytes(8) + storageBytes(16);
}

function finish(roles: Record<string, number>): MemoryPlan {
  const total = Object.values(roles).reduce((a, b) => a + b, 0);
  return { ...roles, total } as MemoryPlan;
}

export function planTraining(cfg: LlamaConfig, o: TrainPlanOptions): MemoryPlan {
  const d = llamaDims(cfg);
  const model = llamaParamTable(cfg, o.maxBindingBytes);
  const trainTable = o.lora ? loraParamTable(cfg, o.lora, o.maxBindingBytes) : model;
  const passBatch = sequencesPerPass(d, o.maxBindingBytes, o.maxLen, o.batch, '--max-len');
  const R = passBatch * o.maxLen;
  const roles: Record<string, number> = {
    weights: arenaBytes(model, o.dtype),
    rope_table: ropeBytes(cfg),
    // Full fine-tuning in bf16 keeps f32 masters beside the bf16 weights; in f32 the weights are the
    // masters. With LoRA the adapter (f32) is what trains.
    master_weights: o.lora || o.dtype === 'f32' ? 0 : arenaBytes(model, 'f32'),
    adapter: o.lora ? arenaBytes(trainTable, 'f32') : 0,
    gradients: arenaBytes(trainTable, 'f32'),
    adam_moments: 2 * arenaBytes(trainTable, o.optimDtype ?? 'f32'),
    optimizer_scratch: optimizerScratchBytes(trainTable),
  };
  for (const e of trainBufferLayout(d, R, o.checkpointing, o.lora)) roles[e.role] = (roles[e.role] ?? 0) + storageBytes(e.elems * 4);
  roles.logits = storageBytes(logitsChunkRows(o.maxBindingBytes, d.V, R) * d.V * 4);
  return finish(roles);
}

/**
 * The memory of `wgpu-char serve`: the model (and adapter) plus a BatchEngine of `slots` KV caches
 * of `context` rows and `prefillChunk` prompt rows a step (batchEngineLayout in
 * src/gen/batch-engine.ts).
 */
export function planServing(cfg: LlamaConfig, o: SamplePlanOptions & { slots: number; prefillChunk: number }): MemoryPlan {
  const d = llamaDims(cfg);
  const roles: Record<string, number> = {
    weights: arenaBytes(llamaParamTable(cfg, o.maxBindingBytes), o.dtype),
    rope_table: ropeBytes(cfg),
    adapter: o.lora ? arenaBytes(loraParamTable(cfg, o.lora, o.maxBindingBytes), 'f32') : 0,
  };
  for (const e of batchEngineLayout(d, { slots: o.slots, contextLength: o.context, prefillChunk: o.prefillChunk }, o.lora)) roles[e.role] = (roles[e.role] ?? 0) + storageBytes(e.bytes);
  return finish(roles);
}

export function planSampling(cfg: LlamaConfig, o: SamplePlanOptions): MemoryPlan {
  const d = llamaDims(cfg);
  const model = llamaParamTable(cfg, o.maxBindingBytes);
  const { batch, maxRows } = forwardShape(d, o.maxBindingBytes, 1, o.context);
  const roles: Record<string, number> = {
    weights: arenaBytes(model, o.dtype),
    rope_table: ropeBytes(cfg),
    adapter: o.lora ? arenaBytes(loraParamTable(cfg, o.lora, o.maxBindingBytes), 'f32') : 0,
  };
  for (const e of forwardStateLayout(d, batch, maxRows, o.context, o.lora)) roles[e.role] = (roles[e.role] ?? 0) + storageBytes(e.bytes);
  // src/gen/generate.ts: logits and probabilities of one row, the repetition penalty's ids.
  roles.sampling = 2 * storageBytes(d.V * 4) + storageBytes(o.context * 4);
  return finish(roles);
}

/**
 * The memory plan of a TrainStep.create with `opts` on this device, before
 * anything is allocated: the total, its main roles, and on a software adapter (lavapipe: the GPU's
 * memory is the host's) the host's free memory.
 */
export async function planTrainStep(opts: TrainStepOptions): Promise<{ total: number; summary: string; hostFree: number | null }> {
  const gpu = await acquireGpu();
  const cfg = opts.synthetic ? opts.synthetic.config : loadLlamaConfig(opts.modelDir);
  const p = planTraining(cfg, {
    dtype: opts.dtype, optimDtype: opts.optimDtype, maxLen: opts.maxLen, batch: opts.maxBatch, checkpointing: opts.checkpointing, lora: opts.lora?.config,
    maxBindingBytes: Math.min(gpu.maxBindingBytes, opts.bindingLimit ?? Infinity),
  });
  const activations = p.saved_activations + p.layer_working_set + p.activation_gradients + (p.lora_buffers ?? 0) + p.logits + p.batch;
  const optimizer = p.master_weights + p.adapter + p.gradients + p.adam_moments + p.optimizer_scratch;
  const summary = `weights ${formatBytes(p.weights)}, ${opts.lora ? 'adapter and its optimizer' : 'masters, gradients and Adam moments'} ${formatBytes(optimizer)}, activations ${formatBytes(activations)}`;
  return { total: p.total, summary, hostFree: gpu.report.isSoftware ? freemem() : null };
}
