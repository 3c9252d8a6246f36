/**
 * Negative log-likelihood of prompted SFT samples under a model (the `eval` command), with the
 * paper's masking (src/data/sft.ts). Up to `batch` sequences per forward, padded to the longest
 * (padding rows carry no target, and causal attention keeps them out of the real rows); logits are computed in row chunks
 * so that a [rows, V] block never exceeds the binding limit, and reduced per row on the GPU by the
 * cross-entropy kernel; only the per-row losses are read back.
 */
import { createStorage, StagingReader, type GpuBuffer } from '../gpu/buffers.ts';
import { Recorder } from '../gpu/kernels.ts';
import type { Tokenizer } from '../data/tokenizer.ts';
import type { PromptedSample } from '../data/prompted.ts';
import { padBatch, targetCount, tokenizeSample, type TokenizedSample } from '../data/sft.ts';
import { LlamaForward, type LlamaModel } from './llama.ts';
import { CrossEntropyOp } from '../ops/cross_entropy.ts';
import { LinearOp } from '../ops/matmul.ts';
import { UserError } from '../errors.ts';

export interface EvalResult {
  /** Mean NLL per target token (nats). */
  nll: number;
  ppl: number;
  /** Target tokens counted. */
  tokens: number;
  samples: number;
  /** Samples whose prompt alone exceeds max-len. */
  skipped: number;
  truncated: number;
}

/** Rows of logits per chunk: as many as fit one binding, at most `maxRows`. */
export function logitsChunkRows(maxBindingBytes: number, V: number, maxRows: number): number {
  return Math.max(1, Math.min(maxRows, Math.floor(maxBindingBytes / (V * 4))));
}

export class SequenceScorer {
  private constructor(
    readonly model: LlamaModel,
    readonly forward: LlamaForward,
    private readonly chunkRows: number,
    private readonly head: LinearOp,
    private readonly ce: CrossEntropyOp,
    private readonly targets: GpuBuffer,
    private readonly loss: GpuBuffer,
    readonly maxLen: number,
    /** Sequences per forward: the requested batch, or fewer when a pass holds fewer (src/model/llama.ts, sequencesPerPass). */
    readonly batch: number,
    /** Persistent staging for the per-row losses: no buffer allocation per batch. */
    private readonly reader: StagingReader,
  ) {}

  static async create(model: LlamaModel, maxLen: number, batch = 1): Promise<SequenceScorer> {
    const gpu = model.gpu;
    const V = model.dims.V;
    const forward = await LlamaForward.create(model, { maxBatch: batch, maxSeq: maxLen });
    const R = forward.state.maxBatch * maxLen;
    const chunkRows = logitsChunkRows(gpu.maxBindingBytes, V, R);
    const logits = createStorage(gpu, 'eval.logits', chunkRows * V * 4);
    const targets = createStorage(gpu, 'eval.targets', R * 4);
    const loss = createStorage(gpu, 'eval.loss', R * 4);
    const head = await LinearOp.create(gpu, model.lmHead(), forward.state.xn, logits, false);
    const ce = await CrossEntropyOp.create(gpu, V, logits, targets, loss, false);
    return new SequenceScorer(model, forward, chunkRows, head, ce, targets, loss, maxLen, forward.state.maxBatch, new StagingReader(gpu, R * 4, 'eval.loss.staging'));
  }

  /** Sum of the NLL over the sample's target tokens. */
  async sumNll(s: TokenizedSample): Promise<number> {
    return (await this.sumNllBatch([s]))[0];
  }

  /** Per-sample sums of the NLL over their target tokens, up to `batch` samples in one forward. */
  async sumNllBatch(samples: TokenizedSample[]): Promise<number[]> {
    const gpu = this.model.gpu;
    const B = samples.length;
    if (B === 0 || B > this.batch) throw new Error(`sumNllBatch: ${B} samples (max ${this.batch})`);
    // Padding ids are any valid token (their rows carry no target); row b·T + t is sample b, position t.
    const { T, ids, targets } = padBatch(samples, 0);
    const R = B * T;
    gpu.device.queue.writeBuffer(this.forward.state.ids.buffer, 0, ids);
    gpu.device.queue.writeBuffer(this.targets.buffer, 0, targets);
    const rec = new Recorder(gpu, 'eval');
    this.forward.record(rec, B, T, 0);
    // The logits chunks reuse one buffer and one op pair: each dispatch has its own Params.
    for (let r0 = 0; r0 < R; r0 += this.chunkRows) {
      const rows = Math.min(this.chunkRows, R - r0);
      this.head.record(rec, { rows, inRow: r0 });
      this.ce.record(rec, { rows, outRow: r0 });
    }
    this.reader.copyFrom(rec, this.loss, 0, R * 4);
    rec.submit();
    const losses = new Float32Array(await this.reader.read(), 0, R);
    return samples.map((_, b) => {
      let sum = 0;
      for (let t = 0; t < T; t++) sum += losses[b * T + t];
      return sum;
    });
  }
}

/** Prompted samples tokenized for scoring, with the paper's masking and truncation to `maxLen`. */
export interface EvalSet {
  items: TokenizedSample[];
  /** All samples given. */
  total: number;
  /** Samples whose prompt alone is maxLen tokens or more (nothing left to score). */
  skipped: number;
  truncated: number;
  /** Target tokens to score. */
  tokens: number;
}

/** Tokenizes samples for evaluateSamples (CPU only: callers check the result before setting up the GPU). */
export function tokenizeEvalSamples(tok: Tokenizer, samples: readonly PromptedSample[], maxLen: number): EvalSet {
  const set: EvalSet = { items: [], total: samples.length, skipped: 0, truncated: 0, tokens: 0 };
  for (const s of samples) {
    const t = tokenizeSample(tok, s, maxLen);
    if (!t) {
      set.skipped++;
      continue;
    }
    if (t.truncated) set.truncated++;
    set.tokens += targetCount(t);
    set.items.push(t);
  }
  return set;
}

/**
 * Mean NLL per target token over `samples` (prompted, or already tokenized to `maxLen` by
 * tokenizeEvalSamples). A set with no target token is an error: its mean would be NaN.
 */
export async function evaluateSamples(
  model: LlamaModel,
  tok: Tokenizer,
  samples: PromptedSample[] | EvalSet,
  maxLen: number,
  onProgress?: (done: number, total: number) => void,
  batch = 4,
  /** Told once when the device cannot hold `batch` sequences per forward and fewer are used. */
  onNote?: (message: string) => void,
): Promise<EvalResult> {
  const set = Array.isArray(samples) ? tokenizeEvalSamples(tok, samples, maxLen) : samples;
  if (set.tokens === 0) {
    throw new UserError(`no sample fits --max-len ${maxLen}: the prompts of all ${set.total} sample(s) are ${maxLen} tokens or more (BOS included), leaving no output token to score`);
  }
  const scorer = await SequenceScorer.create(model, maxLen, batch);
  if (scorer.batch < batch) onNote?.(`eval: ${scorer.batch} sequence(s) of ${maxLen} tokens per forward instead of --batch-size ${batch}: a pass must fit the device's ${model.gpu.maxBindingBytes}-byte binding limit`);
  let total = 0;
  let done = 0;
  for (let i = 0; i < set.items.length; i += scorer.batch) {
    const pending = set.items.slice(i, i + scorer.batch);
    for (const v of await scorer.sumNllBatch(pending)) total += v;
    done += pending.length;
    onProgress?.(done + set.skipped, set.total);
  }
  const nll = total / set.tokens;
  return { nll, ppl: Math.exp(nll), tokens: set.tokens, samples: set.items.length, skipped: set.skipped, truncated: set.truncated };
}
