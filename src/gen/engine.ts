/**
 * The seam between continuous batching's policy (src/gen/continuous.ts: which request runs when,
 * sampling, stop strings, streaming) and the GPU work (src/gen/batch-engine.ts: one forward over
 * many KV-cache slots). The policy only ever calls `step`; a fake engine can stand in for tests.
 *
 * A slot is one sequence's KV cache of `contextLength` rows. Its owner feeds it tokens at
 * increasing positions: the prompt in chunks of at most `prefillChunk` tokens, then one sampled
 * token per decode step. A slot is free again as soon as its owner stops feeding it (nothing to
 * clear: the next owner's prefill overwrites rows from position 0, and attention never reads past
 * a row's own position).
 */

/** How to turn one row's logits into the distribution the sampler draws from. */
export interface RowSampling {
  /** 1 / temperature (1 for greedy: the sampler takes the argmax of the probabilities). */
  invTemperature: number;
  /** HF/FastChat repetition penalty (1 = off), applied to the logits of `seen` before the temperature. */
  penalty: number;
  /** The distinct ids seen so far in this sequence (prompt and output), ascending; needed when penalty != 1. */
  seen?: Uint32Array;
  /** Also return the row's logits (after the penalty, before the temperature): the caller's logprobs. */
  wantLogits: boolean;
}

/** The work of one engine step: decode rows and at most one prefill chunk, in one submit and one readback. */
export interface EngineStep {
  /** One new token for each of these slots (distinct slots), token `id` at position `pos`. */
  decode: { slot: number; id: number; pos: number; sampling: RowSampling }[];
  /**
   * At most one chunk (1..prefillChunk tokens) of one slot's prompt, at positions pos0.. of its
   * cache. `sampling` is given when this chunk ends the prompt: its last token's next-token
   * distribution is then returned too.
   */
  prefill?: { slot: number; ids: number[]; pos0: number; sampling?: RowSampling };
}

/** One returned distribution: for each decode row, and for a prefill chunk with `sampling`. */
export interface EngineOutput {
  slot: number;
  /** softmax(penalised logits · invTemperature), `vocabSize` values. */
  probs: Float32Array;
  /** With `wantLogits`: the penalised logits before the temperature. */
  logits?: Float32Array;
}

export interface SlotEngine {
  /** Slots (sequences that can run at once: `--max-batch`). */
  readonly slots: number;
  /** KV-cache rows per slot: prompt and generated tokens together. */
  readonly contextLength: number;
  /** Most prompt tokens one step prefills. */
  readonly prefillChunk: number;
  readonly vocabSize: number;
  /** Runs one step (one command encoder, one submit, one readback); outputs in the order: decode rows as given, then the prefill's. */
  step(work: EngineStep): Promise<EngineOutput[]>;
  destroy(): void;
}
