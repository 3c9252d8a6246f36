/**
 * Training data for `wgpu-char train`: load + tokenize (exactly as src/data/sft.ts, which `eval`
 * uses too), a seeded train/eval split, the order of each epoch, and the micro-batch / optimizer
 * step plan of the HF Trainer, as the Character-LLM training runs it (FastChat's train.py with
 * --already_preprocess, transformers ≈ 4.31).
 *
 * Counts, one device (the reference ran 8; its per-rank numbers are ours with world size 1):
 *   N        samples kept after tokenization (a sample whose prompt alone fills max-len is skipped)
 *   N_eval   = N − floor((1 − ratio)·N), kept in [1, N − 1] when ratio > 0 and N ≥ 2 (reference: 98/2)
 *   M        = ceil(N_train / batch)          micro-batches per epoch (the last one may be short)
 *   S        = max(1, floor(M / accum))       optimizer steps per epoch (HF: len_dataloader // accum, max 1)
 *   total    = max_steps if given, else epochs · S        (HF: max_steps overrides num_train_epochs)
 *   warmup   = ceil(warmup_ratio · total)
 * Step j of an epoch takes micro-batches [j·accum, (j+1)·accum); the last step of the epoch also
 * takes the M − S·accum leftovers, so every sample of every epoch is trained on and the step count
 * is HF's. (HF ≈4.31 instead lets the leftovers' gradients spill into the next update, and drops
 * them after the last epoch.) With M < accum the single step takes all M micro-batches, as HF does.
 *
 * Random streams: the split draws from Rng(seed); the epoch orders from one Rng(seed ^ ORDER_SALT)
 * that runs on across epochs (its state is saved in checkpoints). Each epoch is a Fisher–Yates
 * shuffle of the train set; `shuffle: false` keeps file order.
 */
import { createHash } from 'node:crypto';
import { UserError } from '../errors.ts';
import type { Tokenizer } from '../data/tokenizer.ts';
import { tokenizeSample, type TokenizedSample } from '../data/sft.ts';
import { readPromptedFile } from '../formats/prompted-file.ts';
import type { PromptedSample } from '../data/prompted.ts';
import { warmupSteps } from '../optim/schedule.ts';
import { Rng } from '../util/random.ts';

export interface LoadedData {
  /** Kept samples, in file order. */
  samples: TokenizedSample[];
  /** The same samples as text (for writing the held-out set next to the model). */
  texts: PromptedSample[];
  /** 1-based numbers (in the file) of the samples skipped because the prompt alone fills max-len. */
  skipped: number[];
  /** Kept samples that were cut at max-len (they lose their EOS target, as in the reference). */
  truncated: number;
  /** Samples in the file. */
  total: number;
}

/** Reads a prompted file (JSON array or JSONL) and tokenizes every sample to at most `maxLen` tokens. */
export function loadTrainData(file: string, tok: Tokenizer, maxLen: number): LoadedData {
  const raw = readPromptedFile(file);
  const samples: TokenizedSample[] = [];
  const texts: PromptedSample[] = [];
  const skipped: number[] = [];
  let truncated = 0;
  raw.forEach((s, i) => {
    const t = tokenizeSample(tok, s, maxLen);
    if (t === null) {
      skipped.push(i + 1);
      return;
    }
    if (t.truncated) truncated++;
    samples.push(t);
    texts.push(s);
  });
  return { samples, texts, skipped, truncated, total: raw.length };
}

/** One line naming the skipped samples (the first 10 of them), or null when none was skipped. */
export function describeSkipped(d: LoadedData, file: string, maxLen: number): string | null {
  if (d.skipped.length === 0) return null;
  const shown = d.skipped.slice(0, 10).map((n) => `#${n}`).join(', ');
  const more = d.skipped.length > 10 ? `, … (${d.skipped.length - 10} more)` : '';
  return `${file}: skipped ${d.skipped.length} of ${d.total} sample(s) whose prompt alone fills --max-len ${maxLen}: ${shown}${more}`;
}

/** Train/eval sizes of the split (see the header). */
export function splitCounts(n: number, evalRatio: number): { nTrain: number; nEval: number } {
  if (!(evalRatio >= 0 && evalRatio < 1)) throw new UserError(`--eval-ratio must be in [0, 1), got ${evalRatio}`);
  if (evalRatio === 0 || n < 2) return { nTrain: n, nEval: 0 };
  // python int(0.98 * N); the epsilon keeps e.g. 0.98 · 1600 = 1567.9999… from losing a sample.
  const nTrain = Math.max(1, Math.min(n - 1, Math.floor((1 - evalRatio) * n + 1e-9)));
  return { nTrain, nEval: n - nTrain };
}

/** Seeded split of `n` samples: indices of each side, ascending (the reference's permutation, seeded). */
export function splitTrainEval(n: number, evalRatio: number, seed: number): { train: number[]; eval: number[] } {
  const { nTrain } = splitCounts(n, evalRatio);
  const perm = new Rng(seed).shuffle(Array.from({ length: n }, (_, i) => i));
  const byIndex = (a: number, b: number) => a - b;
  return { train: perm.slice(0, nTrain).sort(byIndex), eval: perm.slice(nTrain).sort(byIndex) };
}

const ORDER_SALT = 0x6f726472; // 'ordr': a stream independent of the split's
/** The random stream of the epoch orders (state saved in trainer_state.json). */
export function orderRng(seed: number): Rng {
  return new Rng((seed ^ ORDER_SALT) >>> 0);
}

/** Positions 0..n−1 into the train set, shuffled with `rng` (advancing it) unless `shuffle` is false. */
export function epochOrder(n: number, shuffle: boolean, rng: Rng): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  return shuffle ? rng.shuffle(order) : order;
}

export interface EpochPlan {
  trainSamples: number;
  batchSize: number;
  gradAccum: number;
  /** M = ceil(N_train / batch). */
  microBatches: number;
  /** S = max(1, floor(M / accum)). */
  stepsPerEpoch: number;
  /** Micro-batches the last step of each epoch takes beyond `gradAccum` (M − S·accum, when M ≥ accum). */
  leftover: number;
}

export function planEpoch(trainSamples: number, batchSize: number, gradAccum: number): EpochPlan {
  if (!(Number.isInteger(batchSize) && batchSize >= 1)) throw new UserError(`--batch-size must be an integer ≥ 1, got ${batchSize}`);
  if (!(Number.isInteger(gradAccum) && gradAccum >= 1)) throw new UserError(`--grad-accum must be an integer ≥ 1, got ${gradAccum}`);
  if (trainSamples < 1) throw new UserError('no training samples (all were skipped or held out)');
  const microBatches = Math.ceil(trainSamples / batchSize);
  const stepsPerEpoch = Math.max(1, Math.floor(microBatches / gradAccum));
  const leftover = Math.max(0, microBatches - stepsPerEpoch * gradAccum);
  return { trainSamples, batchSize, gradAccum, microBatches, stepsPerEpoch, leftover };
}

export interface RunPlan {
  totalSteps: number;
  warmupSteps: number;
  /** Epochs the run touches: `epochs`, or ceil(max_steps / S) when max_steps is given. */
  epochs: number;
}

export function planRun(plan: EpochPlan, o: { epochs: number; maxSteps: number; warmupRatio: number }): RunPlan {
  if (!(Number.isInteger(o.epochs) && o.epochs >= 1)) throw new UserError(`--epochs must be an integer ≥ 1, got ${o.epochs}`);
  const totalSteps = o.maxSteps > 0 ? o.maxSteps : o.epochs * plan.stepsPerEpoch;
  const epochs = o.maxSteps > 0 ? Math.ceil(o.maxSteps / plan.stepsPerEpoch) : o.epochs;
  return { totalSteps, warmupSteps: warmupSteps(o.warmupRatio, totalSteps), epochs };
}

/** The micro-batches of step `stepInEpoch` (0-based) of an epoch with `order`: lists of positions into the train set. */
export function microBatchesOfStep(order: readonly number[], stepInEpoch: number, plan: EpochPlan): number[][] {
  if (stepInEpoch < 0 || stepInEpoch >= plan.stepsPerEpoch) throw new RangeError(`step ${stepInEpoch} outside an epoch of ${plan.stepsPerEpoch} steps`);
  const first = stepInEpoch * plan.gradAccum;
  const last = stepInEpoch === plan.stepsPerEpoch - 1 ? plan.microBatches : first + plan.gradAccum; // exclusive
  const out: number[][] = [];
  for (let m = first; m < last; m++) out.push(order.slice(m * plan.batchSize, (m + 1) * plan.batchSize));
  return out;
}

/** sha256 of the tokenized samples (ids and target starts): a resume must see exactly the same data. */
export function dataFingerprint(samples: readonly TokenizedSample[]): string {
  const h = createHash('sha256');
  for (const s of samples) {
    const row = new Int32Array(s.ids.length + 2);
    row[0] = s.ids.length;
    row[1] = s.targetStart;
    row.set(s.ids, 2);
    h.update(new Uint8Array(row.buffer));
  }
  return h.digest('hex');
}
