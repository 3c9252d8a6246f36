/**
 * One sequence's decoding, whoever runs its forward passes: `Generator` (one sequence at a time,
 * src/gen/generate.ts) and `ContinuousBatcher` (many at once over a SlotEngine, src/gen/continuous.ts)
 * both hand every next-token distribution to a `SequenceDecoding` and feed back the token it returns.
 *
 * What it owns: the prompt (BOS prepended, cut to BOS + its last tokens when longer than the context
 * less maxNewTokens, said on `onPromptCut`), the seeded Rng (one coin drawn per sampled token, so a
 * seed gives the same stream greedy or not), greedy below GREEDY_TEMPERATURE else top-p, EOS, stop
 * strings and the speaker tag (StopMatcher), the streamed text (one StreamDecoder), the tokens the
 * repetition penalty applies to (prompt and output), maxNewTokens and the context's end, the
 * prefill/decode seconds, and the logprobs.
 *
 * Logprobs (`GenerateOptions.logprobs`): the log-softmax of the row's logits as the forward returns
 * them with `wantLogits`, i.e. the model's distribution AFTER the repetition penalty and BEFORE the
 * temperature and top-p; computed on the CPU in float64.
 */
import type { StreamDecoder, Tokenizer } from '../data/tokenizer.ts';
import { Rng } from '../util/random.ts';
import { checkMaxNewTokens, promptRoom } from './context.ts';
import type { RowSampling } from './engine.ts';
import { argmax, GREEDY_TEMPERATURE, sampleTopP } from './sampler.ts';
import { StopMatcher } from './stop.ts';

/** The most alternatives `GenerateOptions.logprobs` may ask for (OpenAI's top_logprobs maximum). */
export const MAX_TOP_LOGPROBS = 20;

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
  /**
   * Log-probabilities of each sampled token (see the file header) with this many top alternatives
   * (0: the sampled token's only, at most MAX_TOP_LOGPROBS); absent: none.
   */
  logprobs?: number;
  /** Called with each piece of text as soon as it is final. */
  onText?: (text: string) => void;
  /**
   * With `logprobs`: called for each sampled token as soon as it is drawn, before the text it
   * completes (if any yet) reaches `onText`; so the tokens reported since the last `onText` are the
   * ones behind that text (plus any whose text is still held back, e.g. a possible stop string).
   */
  onToken?: (token: TokenLogprob) => void;
  /**
   * Called once, before decoding, when the prompt is longer than its room (the context less
   * maxNewTokens) and is cut to BOS + its last tokens: `total` tokens (BOS included), `kept`.
   */
  onPromptCut?: (cut: { total: number; kept: number; room: number }) => void;
}

/** One alternative of a sampled token: its id, text (see `tokenText`) and log-probability. */
export interface TokenAlternative {
  token: number;
  text: string;
  logprob: number;
}

/** A sampled token's log-probability and its `top` alternatives, most likely first. */
export interface TokenLogprob extends TokenAlternative {
  top: TokenAlternative[];
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
  /** With `GenerateOptions.logprobs`: one entry per token of `tokens`, stop-string and EOS tokens included. */
  logprobs?: TokenLogprob[];
}

/** What decoding needs of the model it runs on. */
export interface DecodingModel {
  tokenizer: Tokenizer;
  /** Prompt and new tokens together (the KV cache's rows). */
  contextLength: number;
  /** The model's max_position_embeddings (for the message of a bad maxNewTokens). */
  maxPositions: number;
  eosIds: readonly number[];
}

/** The next-token distribution of a sequence, as a forward pass returns it. */
export interface RowOutput {
  /** softmax(penalised logits / temperature). */
  probs: Float32Array;
  /** The penalised logits before the temperature; needed when the sequence wants logprobs. */
  logits?: Float32Array;
}

/** A token to feed back: `id` at position `pos` of the sequence's KV cache. */
export interface Feed {
  id: number;
  pos: number;
}

export class SequenceDecoding {
  /** The prompt's tokens as fed to the model (BOS first; cut if it was too long). */
  readonly promptIds: number[];
  private readonly greedy: boolean;
  private readonly invTemperature: number;
  private readonly penalty: number;
  private readonly rng: Rng;
  private readonly eos: Set<number>;
  private readonly stop: StopMatcher;
  private readonly decoder: StreamDecoder;
  /** Every token of the context so far (FastChat/HF apply the penalty to prompt and output). */
  private readonly context: Set<number>;
  private text = '';
  private readonly tokens: number[] = [];
  private readonly logprobs: TokenLogprob[] | undefined;
  private newTokens = 0;
  private pos: number;
  private finishReason: 'stop' | 'length' = 'length';
  private t0: number | null = null;
  private t1: number | null = null;
  private t2: number | null = null;

  /** Tokenises and (if needed) cuts the prompt; throws on a bad maxNewTokens or penalty. */
  constructor(
    private readonly model: DecodingModel,
    prompt: string,
    private readonly opts: GenerateOptions,
  ) {
    let ids = model.tokenizer.encode(prompt, { bos: true });
    checkMaxNewTokens(opts.maxNewTokens, model.contextLength, model.maxPositions);
    const room = promptRoom(model.contextLength, opts.maxNewTokens);
    if (ids.length > room) {
      const total = ids.length;
      ids = [ids[0], ...ids.slice(ids.length - (room - 1))];
      opts.onPromptCut?.({ total, kept: ids.length, room });
    }
    this.promptIds = ids;
    this.pos = ids.length;
    this.greedy = opts.temperature < GREEDY_TEMPERATURE;
    this.invTemperature = this.greedy ? 1 : 1 / opts.temperature;
    this.rng = new Rng(opts.seed);
    this.eos = new Set(model.eosIds);
    this.stop = new StopMatcher(opts.stop, opts.stopOnSpeakerTag);
    this.decoder = model.tokenizer.createStreamDecoder();
    this.penalty = opts.repetitionPenalty ?? 1;
    if (!(this.penalty > 0)) throw new Error(`repetition penalty must be > 0, got ${this.penalty}`);
    const k = opts.logprobs;
    if (k !== undefined && !(Number.isInteger(k) && k >= 0 && k <= MAX_TOP_LOGPROBS)) {
      throw new Error(`logprobs must be an integer in [0, ${MAX_TOP_LOGPROBS}], got ${k}`);
    }
    this.logprobs = k === undefined ? undefined : [];
    this.context = new Set<number>(ids);
  }

  /** How the forward turns this sequence's next logits into its distribution (the penalty's ids as of now). */
  rowSampling(): RowSampling {
    return {
      invTemperature: this.invTemperature,
      penalty: this.penalty,
      seen: this.penalty === 1 ? undefined : distinctIds(this.context),
      wantLogits: this.logprobs !== undefined,
    };
  }

  /** Marks the start of the prefill (the prefill seconds run from here to the first distribution). */
  startPrefill(): void {
    this.t0 ??= performance.now();
  }

  /**
   * Takes the next-token distribution (the prefill's, then each fed token's): samples a token,
   * streams its text, and returns the token to feed next, or null when the sequence has ended
   * (then `result()` is ready). Throws what `onText` or `onToken` throws, leaving the sequence unfinished.
   */
  next(out: RowOutput): Feed | null {
    if (this.t2 !== null) throw new Error('SequenceDecoding.next: the sequence has ended');
    this.t1 ??= performance.now();
    if (this.newTokens >= this.opts.maxNewTokens) return this.finish();
    const coin = this.rng.uniform(); // drawn every step, so a seed gives the same stream greedy or not
    const id = this.greedy ? argmax(out.probs) : sampleTopP(out.probs, this.opts.topP, coin);
    this.newTokens++;
    this.tokens.push(id);
    if (this.logprobs) {
      if (!out.logits) throw new Error('SequenceDecoding.next: logprobs were asked for but the forward returned no logits');
      const lp = tokenLogprob(out.logits, id, this.opts.logprobs!, (t) => tokenText(this.model.tokenizer, t));
      this.logprobs.push(lp);
      this.opts.onToken?.(lp);
    }
    if (this.eos.has(id)) {
      this.finishReason = 'stop';
      return this.finish();
    }
    this.emit(this.stop.push(this.decoder.push(id)));
    if (this.stop.stopped) {
      this.finishReason = 'stop';
      return this.finish();
    }
    if (this.newTokens >= this.opts.maxNewTokens || this.pos + 1 > this.model.contextLength) return this.finish();
    this.context.add(id);
    return { id, pos: this.pos++ };
  }

  /** Tokens sampled so far. */
  get sampledTokens(): number {
    return this.newTokens;
  }

  /** Whether `next` has returned null. */
  get finished(): boolean {
    return this.t2 !== null;
  }

  /** The finished sequence's result. */
  result(): GenerateResult {
    if (this.t2 === null) throw new Error('SequenceDecoding.result: the sequence has not ended');
    const t0 = this.t0 ?? this.t1!;
    return {
      text: this.text,
      tokens: this.tokens,
      promptTokens: this.promptIds.length,
      newTokens: this.newTokens,
      finishReason: this.finishReason,
      prefillSeconds: (this.t1! - t0) / 1000,
      decodeSeconds: (this.t2 - this.t1!) / 1000,
      ...(this.logprobs ? { logprobs: this.logprobs } : {}),
    };
  }

  private emit(s: string): void {
    if (s) {
      this.text += s;
      this.opts.onText?.(s);
    }
  }

  private finish(): null {
    if (!this.stop.stopped) this.emit(this.stop.push(this.decoder.flush()));
    this.emit(this.stop.flush());
    this.t2 = performance.now();
    return null;
  }
}

/** The distinct ids of a token list, ascending (one kernel thread owns each). */
export function distinctIds(ids: Iterable<number>): Uint32Array {
  return Uint32Array.from(new Set(ids)).sort();
}

/**
 * A token's text on its own: its bytes (`Tokenizer.tokenBytes`: "▁" as a space, a byte piece's one
 * byte) as UTF-8, a byte that is part of a longer character becoming U+FFFD.
 */
export function tokenText(tokenizer: Tokenizer, id: number): string {
  return new TextDecoder().decode(tokenizer.tokenBytes(id));
}

/**
 * log-softmax(logits) at `id`, and the `k` most likely tokens (ties: lower id first), in float64.
 */
export function tokenLogprob(logits: Float32Array, id: number, k: number, text: (id: number) => string): TokenLogprob {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  const logZ = max + Math.log(sum);
  // The k largest, kept sorted (k ≤ 20, so insertion beats sorting the vocabulary).
  const top: number[] = [];
  for (let i = 0; i < logits.length && k > 0; i++) {
    if (top.length === k && !(logits[i] > logits[top[k - 1]])) continue;
    let j = Math.min(top.length, k - 1);
    top[j] = i;
    while (j > 0 && logits[top[j - 1]] < logits[i]) {
      top[j] = top[j - 1];
      top[j - 1] = i;
      j--;
    }
  }
  return {
    token: id,
    text: text(id),
    logprob: logits[id] - logZ,
    top: top.map((t) => ({ token: t, text: text(t), logprob: logits[t] - logZ })),
  };
}
