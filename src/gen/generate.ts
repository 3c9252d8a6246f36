/**
 * Prefill + KV-cache decode with sampling. Everything the decode loop needs is allocated once in
 * `Generator.create` (activations, KV cache, logits/probs buffers, a persistent staging buffer);
 * each token is one command encoder (the whole forward, lm_head on the last row, softmax, copy
 * to staging), one submit and one readback of V probabilities.
 */
import { createStorage, StagingReader, type GpuBuffer } from '../gpu/buffers.ts';
import { Recorder } from '../gpu/kernels.ts';
import type { Tokenizer } from '../data/tokenizer.ts';
import { LlamaForward, type LlamaModel } from '../model/llama.ts';
import { LinearOp } from '../ops/matmul.ts';
import { RepetitionPenaltyOp } from '../ops/repetition_penalty.ts';
import { SoftmaxOp } from '../ops/softmax.ts';
import { Rng } from '../util/random.ts';
import { argmax, GREEDY_TEMPERATURE, sampleTopP } from './sampler.ts';
import { StopMatcher } from './stop.ts';
import { eosTokenIds } from '../model/config.ts';
import { UserError } from '../errors.ts';
import { checkMaxNewTokens, promptRoom, resolveContext } from './context.ts';
import type { Note } from '../notes.ts';

export interface GenerateOptions {
  maxNewTokens: number;
  temperature: number;
  topP: number;
  seed: number;
  /** Stop strings, cut from the output (e.g. `<|eot|>`). */
  stop: string[];
  /** Also stop when the model starts another speaker's `Name (action):` tag on a new line. */
  stopOnSpeakerTag: boolean;
  /** HF/FastChat repetition penalty over every token of the context (prompt and output); 1 = off. */
  repetitionPenalty?: number;
  /** Called with each piece of text as soon as it is final. */
  onText?: (text: string) => void;
  /**
   * Called once, before decoding, when the prompt is longer than its room (the context less
   * maxNewTokens) and is cut to BOS + its last tokens: `total` tokens (BOS included), `kept`.
   */
  onPromptCut?: (cut: { total: number; kept: number; room: number }) => void;
}

export interface GenerateResult {
  text: string;
  /** The sampled token ids, in order (the EOS included when it ended the generation). */
  tokens: number[];
  promptTokens: number;
  newTokens: number;
  finishReason: 'stop' | 'length';
  /** Seconds spent in prefill and in the decode loop. */
  prefillSeconds: number;
  decodeSeconds: number;
}

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
    const penaltyIds = createStorage(model.gpu, 'penalty.ids', ctx * 4);
    const penalty = await RepetitionPenaltyOp.create(model.gpu, V, penaltyIds, logits);
    return new Generator(model, tokenizer, forward, lmHead, softmax, logits, probs, reader, ctx, penalty, penaltyIds);
  }

  /**
   * Runs `ids` through the model from position `pos0` and returns the next-token distribution
   * (temperature applied; with a repetition penalty, on the logits of the `seen` distinct ids first).
   */
  private async step(ids: number[], pos0: number, invTemperature: number, penalty = 1, seen?: Uint32Array): Promise<Float32Array> {
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
    rec.submit();
    return new Float32Array(await this.reader.read());
  }

  /**
   * Generates a continuation of `prompt` (BOS is prepended, as LLaMA does). Prompt and new tokens
   * share the context (OpenAI's accounting, as serve checks it): a prompt longer than the context
   * less maxNewTokens keeps BOS and its last tokens (FastChat's worker kept the last ones, BOS
   * lost), reported on `onPromptCut`.
   */
  async generate(prompt: string, opts: GenerateOptions): Promise<GenerateResult> {
    let ids = this.tokenizer.encode(prompt, { bos: true });
    checkMaxNewTokens(opts.maxNewTokens, this.contextLength, this.model.maxPositions);
    const room = promptRoom(this.contextLength, opts.maxNewTokens);
    if (ids.length > room) {
      const total = ids.length;
      ids = [ids[0], ...ids.slice(ids.length - (room - 1))];
      opts.onPromptCut?.({ total, kept: ids.length, room });
    }
    const greedy = opts.temperature < GREEDY_TEMPERATURE;
    const invT = greedy ? 1 : 1 / opts.temperature;
    const rng = new Rng(opts.seed);
    const eos = new Set(eosTokenIds(this.model.cfg));
    const stop = new StopMatcher(opts.stop, opts.stopOnSpeakerTag);
    const decoder = this.tokenizer.createStreamDecoder();
    let text = '';
    const emit = (s: string) => {
      if (s) {
        text += s;
        opts.onText?.(s);
      }
    };

    const penalty = opts.repetitionPenalty ?? 1;
    if (!(penalty > 0)) throw new Error(`repetition penalty must be > 0, got ${penalty}`);
    // Every token of the context so far (FastChat/HF apply the penalty to prompt and output).
    const context = new Set<number>(ids);
    const seen = () => (penalty === 1 ? undefined : distinctIds(context));
    const t0 = performance.now();
    let probs = await this.step(ids, 0, invT, penalty, seen());
    const t1 = performance.now();
    let pos = ids.length;
    let newTokens = 0;
    const tokens: number[] = [];
    let finishReason: 'stop' | 'length' = 'length';
    while (newTokens < opts.maxNewTokens) {
      const coin = rng.uniform(); // drawn every step, so a seed gives the same stream greedy or not
      const next = greedy ? argmax(probs) : sampleTopP(probs, opts.topP, coin);
      newTokens++;
      tokens.push(next);
      if (eos.has(next)) {
        finishReason = 'stop';
        break;
      }
      emit(stop.push(decoder.push(next)));
      if (stop.stopped) {
        finishReason = 'stop';
        break;
      }
      if (newTokens >= opts.maxNewTokens || pos + 1 > this.contextLength) break;
      context.add(next);
      probs = await this.step([next], pos, invT, penalty, seen());
      pos++;
    }
    if (!stop.stopped) emit(stop.push(decoder.flush()));
    emit(stop.flush());
    const t2 = performance.now();
    return {
      text,
      tokens,
      promptTokens: ids.length,
      newTokens,
      finishReason,
      prefillSeconds: (t1 - t0) / 1000,
      decodeSeconds: (t2 - t1) / 1000,
    };
  }

  destroy(): void {
    this.forward.state.destroy();
    this.logits.destroy();
    this.probs.destroy();
    this.reader.destroy();
    this.penaltyIds.destroy();
  }
}

/** The distinct ids of a token list, ascending (one kernel thread owns each). */
export function distinctIds(ids: Iterable<number>): Uint32Array {
  return Uint32Array.from(new Set(ids)).sort();
}
