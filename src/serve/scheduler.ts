/**
 * When a request may use the model. The GPU model has one KV cache, so `SerialScheduler` serves
 * requests ONE AT A TIME, in arrival order: a request holds the model for its whole answer (all its
 * prompts; a stream until it ends). Requests are validated before they are scheduled, so a bad one
 * is answered at once. A client that disconnects is dropped while it waits, or its generation stops
 * at the next piece of text.
 *
 * Shutdown: once the server's drain timed out (server.ts), `abortAll()` makes every request still
 * waiting fail with `ServerStopping` when its turn comes, and the generation in progress throw it
 * at its next piece of text (the generator has no other way in; a stretch of tokens that decodes to
 * no text, or the prefill, runs to its end first). The routes turn it into a stream's final
 * "abort" chunk, or a 503 for an answer not started.
 *
 * Routes generate only through the `generate` a scheduler hands them, so another policy fits behind
 * the same interface: a bounded queue that refuses with 429 when full, or continuous batching that
 * runs the generations of many requests in one decode step.
 */
import type { GenerateOptions, GenerateResult } from '../gen/generate.ts';
import type { Client } from './client.ts';
import { ApiError, ErrorCode } from './errors.ts';

/** A request cut because the server is shutting down (a 503 where no answer has started). */
export class ServerStopping extends ApiError {
  constructor(headers: Record<string, string> = {}) {
    super(ErrorCode.SHUTTING_DOWN, 'the server is shutting down and could not finish this request in its drain time; retry it after the server is back', 503, { headers });
    this.name = 'ServerStopping';
  }
}

/** One generation, as `Generator.generate` runs it. */
export type Generate = (prompt: string, opts: GenerateOptions) => Promise<GenerateResult>;

export interface Scheduler {
  /** Runs `work` for `client` when the model is its to use; resolves or rejects as `work` does. */
  run<T>(client: Client, work: (generate: Generate) => Promise<T>): Promise<T>;
  /** Resolves when the requests scheduled so far have finished. */
  idle(): Promise<void>;
  /** From now on, the waiting requests and the generation in progress fail with ServerStopping (see the file header). */
  abortAll(error: ServerStopping): void;
  /** How many requests `abortAll` has cut so far. */
  readonly aborted: number;
}

export class SerialScheduler implements Scheduler {
  private tail: Promise<unknown> = Promise.resolve();
  private stopping: ServerStopping | null = null;
  private abortedCount = 0;

  constructor(private readonly generator: { generate: Generate }) {}

  get aborted(): number {
    return this.abortedCount;
  }

  run<T>(client: Client, work: (generate: Generate) => Promise<T>): Promise<T> {
    const turn = this.tail.then(() => {
      client.ensurePresent();
      this.ensureNotStopping();
      return work(this.generateFor(client));
    });
    this.tail = turn.catch(() => undefined);
    return turn;
  }

  async idle(): Promise<void> {
    await this.tail;
  }

  abortAll(error: ServerStopping): void {
    this.stopping = error;
  }

  private ensureNotStopping(): void {
    if (!this.stopping) return;
    this.abortedCount++;
    throw this.stopping;
  }

  /** Generation that stops (ClientGone, ServerStopping) at the first piece of text after the client has left or the server cut it. */
  private generateFor(client: Client): Generate {
    return (prompt, opts) =>
      this.generator.generate(prompt, {
        ...opts,
        onText: (t) => {
          client.ensurePresent();
          this.ensureNotStopping();
          opts.onText?.(t);
        },
      });
  }
}
