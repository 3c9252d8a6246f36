/**
 * When a request may use the model. The GPU model has one KV cache, so `SerialScheduler` serves
 * requests ONE AT A TIME, in arrival order: a request holds the model for its whole answer (all its
 * prompts; a stream until it ends). Requests are validated before they are scheduled, so a bad one
 * is answered at once. A client that disconnects is dropped while it waits, or its generation stops
 * at the next piece of text.
 *
 * Routes generate only through the `generate` a scheduler hands them, so another policy fits behind
 * the same interface: a bounded queue that refuses with 429 when full, or continuous batching that
 * runs the generations of many requests in one decode step.
 */
import type { GenerateOptions, GenerateResult } from '../gen/generate.ts';
import type { Client } from './client.ts';

/** One generation, as `Generator.generate` runs it. */
export type Generate = (prompt: string, opts: GenerateOptions) => Promise<GenerateResult>;

export interface Scheduler {
  /** Runs `work` for `client` when the model is its to use; resolves or rejects as `work` does. */
  run<T>(client: Client, work: (generate: Generate) => Promise<T>): Promise<T>;
  /** Resolves when the requests scheduled so far have finished. */
  idle(): Promise<void>;
}

export class SerialScheduler implements Scheduler {
  private tail: Promise<unknown> = Promise.resolve();

  constructor(private readonly generator: { generate: Generate }) {}

  run<T>(client: Client, work: (generate: Generate) => Promise<T>): Promise<T> {
    const turn = this.tail.then(() => {
      client.ensurePresent();
      return work(this.generateFor(client));
    });
    this.tail = turn.catch(() => undefined);
    return turn;
  }

  async idle(): Promise<void> {
    await this.tail;
  }

  /** Generation that stops (ClientGone) at the first piece of text after the client has left. */
  private generateFor(client: Client): Generate {
    return (prompt, opts) =>
      this.generator.generate(prompt, {
        ...opts,
        onText: (t) => {
          client.ensurePresent();
          opts.onText?.(t);
        },
      });
  }
}
