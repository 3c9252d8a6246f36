/**
 * Negative log-likelihood of prompted SFT samples under a model (the `eval` command), with the
 * paper's masking (src/data/sft.ts). One sequence per forward; logits are computed in row chunks
 * so that a [rows, V] block never exceeds the binding limit, and reduced per row on the GPU by the
 * cross-entropy kernel; only the per-row losses are read back.
 */
import { createStorage, readF32, type GpuBuffer } from '../gpu/buffers.ts';
import { Recorder } from '../gpu/kernels.ts';
import type { Tokenizer } from '../data/tokenizer.ts';
import type { PromptedSample } from '../data/prompted.ts';
import { nextTokenTargets, targetCount, tokenizeSample, type TokenizedSample } from '../data/sft.ts';
import { LlamaForward, type LlamaModel } from './llama.ts';
import { CrossEntropyOp, LinearOp } from './ops.ts';

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
    private readonly heads: LinearOp[],
    private readonly ces: CrossEntropyOp[],
    private readonly targets: GpuBuffer,
    private readonly loss: GpuBuffer,
    readonly maxLen: number,
  ) {}

  static async create(model: LlamaModel, maxLen: number): Promise<SequenceScorer> {
    const gpu = model.gpu;
    const V = model.dims.V;
    const forward = await LlamaForward.create(model, { maxBatch: 1, maxSeq: maxLen });
    const chunkRows = logitsChunkRows(gpu.maxBindingBytes, V, maxLen);
    const logits = createStorage(gpu, 'eval.logits', chunkRows * V * 4);
    const targets = createStorage(gpu, 'eval.targets', maxLen * 4);
    const loss = createStorage(gpu, 'eval.loss', maxLen * 4);
    const heads: LinearOp[] = [];
    const ces: CrossEntropyOp[] = [];
    // One op pair per chunk: each has its own Params, so all chunks fit in one encoder.
    for (let r = 0; r < maxLen; r += chunkRows) {
      heads.push(await LinearOp.create(gpu, model.lmHead(), forward.state.xn, logits, false));
      ces.push(await CrossEntropyOp.create(gpu, logits, targets, loss, false));
    }
    return new SequenceScorer(model, forward, chunkRows, heads, ces, targets, loss, maxLen);
  }

  /** Sum of the NLL over the sample's target tokens. */
  async sumNll(s: TokenizedSample): Promise<number> {
    const gpu = this.model.gpu;
    const T = s.ids.length;
    const { H, V } = this.model.dims;
    gpu.device.queue.writeBuffer(this.forward.state.ids.buffer, 0, new Uint32Array(s.ids));
    gpu.device.queue.writeBuffer(this.targets.buffer, 0, nextTokenTargets(s, T) as Int32Array<ArrayBuffer>);
    const rec = new Recorder(gpu, 'eval');
    this.forward.record(rec, 1, T, 0);
    for (let c = 0, r0 = 0; r0 < T; c++, r0 += this.chunkRows) {
      const rows = Math.min(this.chunkRows, T - r0);
      this.heads[c].record(rec, rows, r0 * H, 0);
      this.ces[c].record(rec, rows, V, 0, r0, 1);
    }
    rec.submit();
    const losses = await readF32(gpu, this.loss, T);
    let sum = 0;
    for (let t = 0; t < T; t++) sum += losses[t];
    return sum;
  }
}

export async function evaluateSamples(
  model: LlamaModel,
  tok: Tokenizer,
  samples: PromptedSample[],
  maxLen: number,
  onProgress?: (done: number, total: number) => void,
): Promise<EvalResult> {
  const scorer = await SequenceScorer.create(model, maxLen);
  let total = 0;
  let tokens = 0;
  let skipped = 0;
  let truncated = 0;
  let done = 0;
  for (const s of samples) {
    const t = tokenizeSample(tok, s, maxLen);
    if (!t) {
      skipped++;
    } else {
      if (t.truncated) truncated++;
      total += await scorer.sumNll(t);
      tokens += targetCount(t);
    }
    onProgress?.(++done, samples.length);
  }
  const nll = tokens > 0 ? total / tokens : NaN;
  return { nll, ppl: Math.exp(nll), tokens, samples: samples.length - skipped, skipped, truncated };
}
