/**
 * Prefill + KV-cache decode with sampling. Everything the decode loop needs is allocated once in
 * `Generator.create` (activations, KV cache, logits/probs buffers, a persistent staging buffer);
 * each token is one command encoder (the whole forward, lm_head on the last row, softmax, copy
 * to staging), one submit and one readback of V probabilities (and of the V logits, when the
 * sequence wants logprobs). What happens between the forwards (sampling, stops, streaming, the
 * prompt cut) is src/gen/sequence.ts, shared with ContinuousBatcher.
 */
import { createStorage, StagingReader, type GpuBuffer } from '../gpu/buffers.ts';
import { Recorder } from '../gpu/kernels.ts';
import type { Tokenizer } from '../data/tokenizer.ts';
import { LlamaForward, type LlamaModel } from '../model/llama.ts';
import { LinearOp } from '../ops/matmul.ts';
import { RepetitionPenaltyOp } from '../ops/repetition_penalty.ts';
import { SoftmaxOp } from '../ops/softmax.ts';
import { eosTokenIds } from '../model/config.ts';
import { UserError } from '../errors.ts';
import { resolveContext } from './context.ts';
import type { Note } from '../notes.ts';
import type { RowSampling } from './engine.ts';
import { SequenceDecoding, type DecodingModel, type GenerateOptions, type GenerateResult, type RowOutput } from './sequence.ts';

export type { GenerateOptions, GenerateResult, TokenLogprob } from './sequence.ts';

export class Generator {
  private constructor(
    readonly model: LlamaModel,
    readonly tokenizer: Tokenizer,
    readonly forward: LlamaForward,
    private readonly lmHead: LinearOp,
    private readonly softmax: SoftmaxOp,
    private readonly logits: GpuBuffer,
    private readonly probs: GpuBuffer,
    private readonly reader: StagingReader,
    private readonly logitsReader: StagingReader,
    readonly contextLength: number,
    private readonly penalty: RepetitionPenaltyOp,
    private readonly penaltyIds: GpuBuffer,
  ) {}

  /**
   * `contextLength` defaults to the model's max_position_embeddings; a larger one is lowered to it,
   * said once on `onNote` (default: stderr).
   */
  static async create(model: LlamaModel, tokenizer: Tokenizer, opts: { contextLength?: number; onNote?: Note } = {}): Promise<Generator> {
    const ctx = resolveContext(opts.contextLength, model.maxPositions, opts.onNote);
    if (tokenizer.vocabSize > model.dims.V) {
      throw new UserError(`${tokenizer.path}: tokenizer has ${tokenizer.vocabSize} pieces but the model's vocab_size is ${model.dims.V}`);
    }
    const forward = await LlamaForward.create(model, { maxBatch: 1, maxSeq: ctx });
    const V = model.dims.V;
    const logits = createStorage(model.gpu, 'logits', V * 4);
    const probs = createStorage(model.gpu, 'probs', V * 4);
    const lmHead = await LinearOp.create(model.gpu, model.lmHead(), forward.state.xn, logits, false);
    const softmax = await SoftmaxOp.create(model.gpu, V, logits, probs);
    const reader = new StagingReader(model.gpu, V * 4, 'probs.staging');
    const logitsReader = new StagingReader(model.gpu, V * 4, 'logits.staging');
    const penaltyIds = createStorage(model.gpu, 'penalty.ids', ctx * 4);
    const penalty = await RepetitionPenaltyOp.create(model.gpu, V, penaltyIds, logits);
    return new Generator(model, tokenizer, forward, lmHead, softmax, logits, probs, reader, logitsReader, ctx, penalty, penaltyIds);
  }

  /**
   * Runs `ids` through the model from position `pos0` (the one sequence's KV cache) and returns the
   * next-token distribution (with a repetition penalty, on the logits of the `seen` distinct ids
   * first; then the temperature), and with `wantLogits` the penalised logits too.
   */
  async forwardRow(ids: number[], pos0: number, sampling: RowSampling): Promise<RowOutput> {
    const { invTemperature, penalty, seen } = sampling;
    const gpu = this.model.gpu;
    gpu.device.queue.writeBuffer(this.forward.state.ids.buffer, 0, new Uint32Array(ids));
    const rec = new Recorder(gpu, 'decode');
    const T = ids.length;
    const xnRow0 = this.forward.record(rec, 1, T, pos0);
    this.lmHead.record(rec, { rows: 1, inRow: T - 1 - xnRow0 });
    if (penalty !== 1 && seen && seen.length > 0) {
      gpu.device.queue.writeBuffer(this.penaltyIds.buffer, 0, seen as Uint32Array<ArrayBuffer>);
      this.penalty.record(rec, { rows: seen.length, scale: penalty });
    }
    this.softmax.record(rec, { rows: 1, scale: invTemperature });
    this.reader.copyFrom(rec, this.probs, 0, this.model.dims.V * 4);
    if (sampling.wantLogits) this.logitsReader.copyFrom(rec, this.logits, 0, this.model.dims.V * 4);
    rec.submit();
    const probs = new Float32Array(await this.reader.read());
    return sampling.wantLogits ? { probs, logits: new Float32Array(await this.logitsReader.read()) } : { probs };
  }

  /**
   * Generates a continuation of `prompt` (BOS is prepended, as LLaMA does). Prompt and new tokens
   * share the context (OpenAI's accounting, as serve checks it): a prompt longer than the context
   * less maxNewTokens keeps BOS and its last tokens (FastChat's worker kept the last ones, BOS
   * lost), reported on `onPromptCut`. Sampling, stops and streaming: src/gen/sequence.ts.
   */
  async generate(prompt: string, opts: GenerateOptions): Promise<GenerateResult> {
    const seq = new SequenceDecoding(this.decodingModel(), prompt, opts);
    seq.startPrefill();
    let out = await this.forwardRow(seq.promptIds, 0, seq.rowSampling());
    for (let feed = seq.next(out); feed; feed = seq.next(out)) out = await this.forwardRow([feed.id], feed.pos, seq.rowSampling());
    return seq.result();
  }

  /** What a SequenceDecoding needs of this model. */
  decodingModel(): DecodingModel {
    return { tokenizer: this.tokenizer, contextLength: this.contextLength, maxPositions: this.model.maxPositions, eosIds: eosTokenIds(this.model.cfg) };
  }

  destroy(): void {
    this.forward.state.destroy();
    this.logits.destroy();
    this.probs.destroy();
    this.reader.destroy();
    this.logitsReader.destroy();
    this.penaltyIds.destroy();
  }
}

