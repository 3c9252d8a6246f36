/**
 * Continuous batching: many `generate` calls at once over one SlotEngine (src/gen/engine.ts), each
 * sequence in a slot of the engine's KV cache. What `serve` runs its requests through.
 *
 * Queue: a call takes a free slot at once (the lowest free one), else waits in a FIFO queue of at
 * most `maxQueue` calls; one more is refused at once with `QueueFull`, carrying an estimate of when
 * a slot is likely free (`retryAfterSeconds`, see `QueueFull`).
 *
 * Step policy: while any slot is busy, a loop runs engine steps. Each step advances every decoding
 * sequence by one token (its last sampled token is fed, its next distribution comes back) and, in
 * the same step, feeds one chunk of at most `engine.prefillChunk` prompt tokens of the OLDEST
 * sequence still prefilling (by when it got its slot); the chunk that ends a prompt returns that
 * sequence's first distribution. So a long prompt costs the running streams one chunk per step
 * instead of stalling them for its whole prefill, and prompts are prefilled in arrival order.
 *
 * Sampling is per sequence and exactly Generator's: each sequence is a `SequenceDecoding`
 * (src/gen/sequence.ts; the prompt cut, seeded coins, top-p, stops, penalty, logprobs), fed the
 * distributions its slot's rows return. A seeded request therefore gives the same text alone or
 * among others, as far as the engine's numbers for a row do not depend on the other rows. Its
 * prefill and decode seconds are wall-clock spans (from its first chunk to its first token, and on
 * to its end), shared with the other sequences of the same steps.
 *
 * Ends and cancellation: a sequence that finishes (EOS, stop, maxNewTokens, the context's end)
 * resolves its call and frees its slot at once; the next step gives the slot to the oldest waiting
 * call. A sequence whose `onText` or `onToken` throws (serve's ClientGone or ServerStopping) frees
 * its slot the same way and its call rejects with that error. `abortAll(error)` rejects the waiting
 * calls at once and the running ones at their next step. A failed engine step rejects every
 * sequence in it with the engine's error (the others carry on).
 */
import type { Tokenizer } from '../data/tokenizer.ts';
import { UserError } from '../errors.ts';
import { Histogram } from '../util/histogram.ts';
import type { EngineOutput, EngineStep, SlotEngine } from './engine.ts';
import { SequenceDecoding, type DecodingModel, type Feed, type GenerateOptions, type GenerateResult } from './sequence.ts';

/** Upper bounds (seconds) of the time-to-first-token histogram's buckets. */
export const TIME_TO_FIRST_TOKEN_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120] as const;

/**
 * How a call ended: its finish reason, 'cancelled' (its onText/onToken threw), 'aborted'
 * (`abortAll`), 'rejected' (QueueFull) or 'error' (the engine step failed, or the options were bad).
 */
export type GenerationOutcome = 'stop' | 'length' | 'cancelled' | 'aborted' | 'rejected' | 'error';
export const GENERATION_OUTCOMES: readonly GenerationOutcome[] = ['stop', 'length', 'cancelled', 'aborted', 'rejected', 'error'];

/** A call refused because the queue is full. */
export class QueueFull extends Error {
  constructor(
    /**
     * When a slot is likely free, in whole seconds (≥ 1): the mean time a finished call held its
     * slot (1 s until one has finished) times the turns of all slots the queue ahead needs.
     */
    readonly retryAfterSeconds: number,
    readonly queued: number,
  ) {
    super(`the server is busy: ${queued} generation(s) are already waiting for a slot; retry in about ${retryAfterSeconds} s`);
    this.name = 'QueueFull';
  }
}

/** The counters behind serve's GET /metrics (one "request" here is one generate call: one choice of a response). */
export interface BatcherMetrics {
  /** Calls holding a slot now (prefilling or decoding). */
  running: number;
  /** Calls waiting for a slot now. */
  queued: number;
  /** Calls submitted (accepted into a slot or the queue), ever. */
  submitted: number;
  /** Calls ended, ever, by how they ended (a QueueFull refusal counts as 'rejected'). */
  ended: Record<GenerationOutcome, number>;
  /** Tokens sampled, ever. */
  generatedTokens: number;
  /** Prompt tokens of the submitted calls (BOS included, after any cut), ever. */
  promptTokens: number;
  /** Seconds from the call to its first sampled token. */
  timeToFirstToken: ReturnType<Histogram['snapshot']>;
}

export interface ContinuousBatcherOptions {
  /** Calls that may wait for a slot; one more is refused with QueueFull. */
  maxQueue: number;
  /** The model's max_position_embeddings (for the message of a maxNewTokens too large). */
  maxPositions: number;
  eosIds: readonly number[];
}

interface Job {
  seq: SequenceDecoding;
  resolve(r: GenerateResult): void;
  reject(e: unknown): void;
  submittedAt: number;
  /** -1 while waiting. */
  slot: number;
  /** Order of getting a slot (the prefill goes to the oldest). */
  admitted: number;
  slotSince: number;
  /** Prompt tokens fed so far. */
  prefilled: number;
  /** The token the next decode step feeds (set once the prompt is in). */
  feed: Feed | null;
  sampled: number;
  /** Set by abortAll: the job rejects with it at the next step. */
  abortedBy: Error | null;
}

export class ContinuousBatcher {
  /** generate() may be called again before earlier calls settle (serve's scheduler runs requests at once). */
  readonly concurrent = true;
  private readonly slotJobs: (Job | null)[];
  private readonly waiting: Job[] = [];
  private readonly decodingModel: DecodingModel;
  private looping = false;
  private admittedCount = 0;
  /** Mean seconds a finished call held its slot (exponential average), for QueueFull's estimate. */
  private meanSlotSeconds: number | null = null;
  private submitted = 0;
  private readonly ended = Object.fromEntries(GENERATION_OUTCOMES.map((o) => [o, 0])) as Record<GenerationOutcome, number>;
  private generatedTokens = 0;
  private promptTokens = 0;
  private readonly ttft = new Histogram(TIME_TO_FIRST_TOKEN_BUCKETS);

  constructor(
    readonly engine: SlotEngine,
    readonly tokenizer: Tokenizer,
    private readonly opts: ContinuousBatcherOptions,
  ) {
    if (!(Number.isInteger(opts.maxQueue) && opts.maxQueue >= 0)) throw new Error(`ContinuousBatcher: maxQueue must be an integer >= 0, got ${opts.maxQueue}`);
    if (tokenizer.vocabSize > engine.vocabSize) throw new UserError(`${tokenizer.path}: tokenizer has ${tokenizer.vocabSize} pieces but the model's vocab_size is ${engine.vocabSize}`);
    this.slotJobs = new Array<Job | null>(engine.slots).fill(null);
    this.decodingModel = { tokenizer, contextLength: engine.contextLength, maxPositions: opts.maxPositions, eosIds: opts.eosIds };
  }

  get contextLength(): number {
    return this.engine.contextLength;
  }

  /** Calls that can run or wait at once: more generations than this in one request can never be taken. */
  get capacity(): number {
    return this.engine.slots + this.opts.maxQueue;
  }

  /**
   * Throws QueueFull unless `count` more calls can start or wait now (serve checks a request's
   * generations together before it answers anything, so that a refusal can still be a 429).
   */
  checkRoom(count: number): void {
    const wouldWait = this.waiting.length + Math.max(0, count - this.freeSlots());
    if (wouldWait <= this.opts.maxQueue) return;
    this.ended.rejected += count;
    const turns = Math.ceil((this.waiting.length + 1) / this.engine.slots);
    throw new QueueFull(Math.max(1, Math.ceil((this.meanSlotSeconds ?? 1) * turns)), this.waiting.length);
  }

  /** A generation as `Generator.generate` runs it (same options and result), sharing the engine's steps with the others. */
  async generate(prompt: string, opts: GenerateOptions): Promise<GenerateResult> {
    this.checkRoom(1);
    let seq: SequenceDecoding;
    try {
      seq = new SequenceDecoding(this.decodingModel, prompt, opts);
    } catch (e) {
      this.ended.error++;
      throw e;
    }
    this.submitted++;
    this.promptTokens += seq.promptIds.length;
    return new Promise<GenerateResult>((resolve, reject) => {
      this.waiting.push({ seq, resolve, reject, submittedAt: performance.now(), slot: -1, admitted: -1, slotSince: 0, prefilled: 0, feed: null, sampled: 0, abortedBy: null });
      this.admit();
      this.kick();
    });
  }

  /** Every waiting call rejects with `error` now, every running one at its next step. Later calls run as usual. */
  abortAll(error: Error): void {
    for (const job of this.waiting.splice(0)) this.end(job, 'aborted', error);
    for (const job of this.slotJobs) if (job) job.abortedBy ??= error;
  }

  metrics(): BatcherMetrics {
    return {
      running: this.slotJobs.filter((j) => j !== null).length,
      queued: this.waiting.length,
      submitted: this.submitted,
      ended: { ...this.ended },
      generatedTokens: this.generatedTokens,
      promptTokens: this.promptTokens,
      timeToFirstToken: this.ttft.snapshot(),
    };
  }

  destroy(): void {
    this.engine.destroy();
  }

  private freeSlots(): number {
    return this.slotJobs.filter((j) => j === null).length;
  }

  /** Gives free slots to the oldest waiting calls. */
  private admit(): void {
    for (let slot = 0; slot < this.slotJobs.length && this.waiting.length > 0; slot++) {
      if (this.slotJobs[slot]) continue;
      const job = this.waiting.shift()!;
      job.slot = slot;
      job.admitted = this.admittedCount++;
      job.slotSince = performance.now();
      this.slotJobs[slot] = job;
    }
  }

  /** Starts the step loop unless it runs. */
  private kick(): void {
    if (this.looping) return;
    this.looping = true;
    void this.loop();
  }

  private async loop(): Promise<void> {
    try {
      for (;;) {
        this.admit();
        for (const job of this.slotJobs) if (job?.abortedBy) this.end(job, 'aborted', job.abortedBy);
        this.admit();
        const planned = this.plan();
        if (!planned) return; // `looping` is cleared in the same turn, so a later call restarts the loop
        let outputs: EngineOutput[];
        try {
          outputs = await this.engine.step(planned.step);
          const expected = planned.step.decode.length + (planned.step.prefill?.sampling ? 1 : 0);
          if (outputs.length !== expected) throw new Error(`SlotEngine.step returned ${outputs.length} rows for a step of ${expected}`);
          for (const out of outputs) {
            const job = this.slotJobs[out.slot];
            if (!job || !planned.jobs.includes(job)) throw new Error(`SlotEngine.step returned a row for slot ${out.slot}, which was not in the step`);
          }
        } catch (e) {
          for (const job of planned.jobs) if (this.slotJobs[job.slot] === job) this.end(job, 'error', e);
          continue;
        }
        if (planned.prefillJob) planned.prefillJob.prefilled += planned.step.prefill!.ids.length;
        for (const out of outputs) this.deliver(this.slotJobs[out.slot]!, out);
      }
    } finally {
      this.looping = false;
    }
  }

  /** The next step: every decoding slot's feed, and a chunk of the oldest prefilling one; null when no slot is busy. */
  private plan(): { step: EngineStep; jobs: Job[]; prefillJob: Job | null } | null {
    const busy = this.slotJobs.filter((j): j is Job => j !== null);
    if (busy.length === 0) return null;
    const step: EngineStep = { decode: [] };
    for (const job of busy) {
      if (job.feed) step.decode.push({ slot: job.slot, id: job.feed.id, pos: job.feed.pos, sampling: job.seq.rowSampling() });
    }
    let prefillJob: Job | null = null;
    for (const job of busy) {
      if (job.prefilled < job.seq.promptIds.length && (!prefillJob || job.admitted < prefillJob.admitted)) prefillJob = job;
    }
    if (prefillJob) {
      const ids = prefillJob.seq.promptIds.slice(prefillJob.prefilled, prefillJob.prefilled + this.engine.prefillChunk);
      const last = prefillJob.prefilled + ids.length === prefillJob.seq.promptIds.length;
      step.prefill = { slot: prefillJob.slot, ids, pos0: prefillJob.prefilled, ...(last ? { sampling: prefillJob.seq.rowSampling() } : {}) };
      prefillJob.seq.startPrefill();
    }
    for (const job of busy) job.feed = null;
    return { step, jobs: busy.filter((j) => j === prefillJob || step.decode.some((d) => d.slot === j.slot)), prefillJob };
  }

  /** Hands a returned distribution to its sequence; ends the job when the sequence ends or its callbacks throw. */
  private deliver(job: Job, out: EngineOutput): void {
    if (job.abortedBy) return; // ended at the next step
    if (job.sampled === 0) this.ttft.observe((performance.now() - job.submittedAt) / 1000);
    let feed: Feed | null;
    try {
      feed = job.seq.next(out);
    } catch (e) {
      this.countSampled(job);
      this.end(job, 'cancelled', e);
      return;
    }
    this.countSampled(job);
    if (feed) job.feed = feed;
    else this.end(job, job.seq.result().finishReason, null);
  }

  private countSampled(job: Job): void {
    const n = job.seq.sampledTokens;
    this.generatedTokens += n - job.sampled;
    job.sampled = n;
  }

  /** Frees the job's slot (if it has one) and settles its call: resolved for a finish reason, else rejected with `error`. */
  private end(job: Job, outcome: GenerationOutcome, error: unknown): void {
    if (job.slot >= 0 && this.slotJobs[job.slot] === job) {
      this.slotJobs[job.slot] = null;
      if (outcome === 'stop' || outcome === 'length') {
        const held = (performance.now() - job.slotSince) / 1000;
        this.meanSlotSeconds = this.meanSlotSeconds === null ? held : 0.8 * this.meanSlotSeconds + 0.2 * held;
      }
    }
    this.ended[outcome]++;
    if (outcome === 'stop' || outcome === 'length') job.resolve(job.seq.result());
    else job.reject(error);
  }
}
