/**
 * The boundary between the host-side trainer (data order, schedule, logging, checkpoints: the
 * files in src/train/) and the GPU math (forward, backward, clipping, AdamW: `TrainStep` in
 * src/train/step.ts). The trainer only ever talks to a `TrainEngine`, so its loop, resume and
 * checkpoint logic are tested with a CPU fake (test/train-fake-engine.ts).
 *
 * Tensor maps are keyed by HF name (`model.layers.0.mlp.up_proj.weight`, see
 * src/formats/hf-checkpoint.ts) and hold f32 values, row-major, with their shape.
 */
import type { TokenizedSample } from '../data/sft.ts';

export type { TokenizedSample };

/** The samples of one micro-batch, padded on the GPU side to the longest sample. */
export interface MicroBatch { samples: TokenizedSample[] }

/**
 * loss = mean over micro-batches of each micro-batch's mean CE over its target tokens (as the HF
 * Trainer's gradient accumulation reduces it: a mean of micro-batch means, not a mean over all tokens).
 */
export interface StepResult { loss: number; gradNorm: number; tokens: number }

export type TensorMapF32 = Map<string, { shape: number[]; data: Float32Array }>;

export interface TrainEngine {
  /** Runs forward+backward of each micro-batch (gradients accumulated), then clipping + AdamW with learning rate `lr` as optimizer step number `step` (1-based, for bias correction). */
  trainStep(microBatches: MicroBatch[], step: number, lr: number): Promise<StepResult>;
  /** Mean CE over target tokens (token-weighted) of these samples, no gradients. */
  evalLoss(samples: TokenizedSample[]): Promise<{ loss: number; tokens: number }>;
  /** f32 master weights by HF name (shape + data), for saving. */
  exportWeights(): Promise<Map<string, { shape: number[]; data: Float32Array }>>;
  /** Optimizer state (Adam m, v per tensor by HF name, plus anything else needed) for checkpoint/resume. */
  exportOptimizerState(): Promise<Map<string, { shape: number[]; data: Float32Array }>>;
  importOptimizerState(state: Map<string, { shape: number[]; data: Float32Array }>): Promise<void>;
  /** Peak GPU bytes allocated (for the report). */
  peakBytes(): number;
}

/**
 * Key prefix of the f32 master weights inside optimizer.safetensors. A resumed run creates the
 * engine from the original --model directory and then calls `importOptimizerState` with the whole
 * file: the engine must load `master.<HF name>` into its f32 master weights (and re-derive its
 * bf16 copy from them), so the resume is exact even though the checkpoint's model.safetensors is
 * rounded to bf16. If `exportOptimizerState` leaves the masters out, the checkpoint writer adds
 * them from `exportWeights()`; other engine entries must not use this prefix.
 */
export const MASTER_PREFIX = 'master.';
