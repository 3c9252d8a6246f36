/**
 * When a request may use the model. `RequestScheduler` has two policies, chosen by the generator:
 *
 * - A generator that runs one generation at a time (Generator: one KV cache; the test fakes) is used
 *   by ONE request at a time, in arrival order: a request holds the model for its whole answer (all
 *   its generations, run one after another; a stream until it ends). A client that disconnects is
 *   dropped while it waits.
 * - A batching generator (ContinuousBatcher, src/gen/continuous.ts) takes every request at once: its
 *   generations share the engine's steps with the others', and the batcher queues those it has no
 *   slot for. Before a request's work starts, its generations are checked to fit (the slots and the
 *   queue, `checkRoom`): if not, the request is refused with a 429 and Retry-After (errors.ts), or
 *   a 400 when it has more generations than the batcher can ever hold, before any answer has begun.
 *   The routes call `generate` for all of a request's generations before they first wait, so the
 *   room checked is the room they take.
 *
 * Either way requests are validated before they are scheduled, so a bad one is answered at once,
 * and a generation stops at its next piece of text once its client has gone (ClientGone).
 *
 * Shutdown: once the server's drain timed out (server.ts), `abortAll()` makes every request still
 * waiting fail with `ServerStopping` when its turn comes, and the generations in progress throw it:
 * a batching generator's at their next step (waiting ones at once), another's at its next piece of
 * text (it has no other way in; a stretch of tokens that decodes to no text, or the prefill, runs to
 * its end first). The routes turn it into a stream's final "abort" chunk, or a 503 for an answer not
 * started.
 */
import type { ContinuousBatcher } from '../gen/continuous.ts';
import type { GenerateOptions, GenerateResult, Generator } from '../gen/generate.ts';
import type { Client } from './client.ts';
import { ApiError, ErrorCode } from './errors.ts';

/** A request cut because the server is shutting down (a 503 where no answer has started). */
export class ServerStopping extends ApiError {
  constructor(headers: Record<string, string> = {}) {
    super(ErrorCode.SHUTTING_DOWN, 'the server is shutting down and could not finish this request in its drain time; retry it after the server is back', 503, { headers });
    this.name = 'ServerStopping';
  }
}

/**
 * What the server needs of a generator that runs ONE generation at a time (Generator, a fake one in
 * tests): the scheduler then serves requests one at a time (see the file header).
 */
export type TextGenerator = Pick<Generator, 'tokenizer' | 'contextLength'> & {
  generate(prompt: string, opts: GenerateOptions): Promise<GenerateResult>;
};

/**
 * A generator that runs many generations at once and queues the rest (ContinuousBatcher): the
 * scheduler lets requests run concurrently, and GET /metrics reports its counters.
 */
export type BatchingGenerator = TextGenerator & Pick<ContinuousBatcher, 'concurrent' | 'capacity' | 'checkRoom' | 'abortAll' | 'metrics'>;

export function isBatching(generator: TextGenerator): generator is BatchingGenerator {
  return (generator as Partial<BatchingGenerator>).concurrent === true;
}

/** One generation, as `Generator.generate` runs it. */
export type Generate = (prompt: string, opts: GenerateOptions) => Promise<GenerateResult>;

export interface Scheduler {
  /**
   * Runs `work` for `client` when the model is its to use, with a `generate` that may be called for
   * `generations` generations at once (call it for all of them before the first await: see the file
   * header); resolves or rejects as `work` does. Rejects without running `work` when they cannot be
   * taken (429, or 400 for more than the generator ever holds).
   */
  run<T>(client: Client, generations: number, work: (generate: Generate) => Promise<T>): Promise<T>;
  /** Resolves when the requests scheduled so far have finished. */
  idle(): Promise<void>;
  /** From now on, the waiting requests and the generations in progress fail with ServerStopping (see the file header). */
  abortAll(error: ServerStopping): void;
  /** How many requests `abortAll` has cut so far. */
  readonly aborted: number;
}

/** Whether `abortAll` has cut one request (counted once however many of its generations it cut). */
interface RequestState {
  cut: boolean;
}

export class RequestScheduler implements Scheduler {
  /** The one-at-a-time policy's queue: the turn of the last request scheduled. */
  private tail: Promise<unknown> = Promise.resolve();
  private readonly inFlight = new Set<Promise<unknown>>();
  private stopping: ServerStopping | null = null;
  private abortedCount = 0;

  constructor(private readonly generator: TextGenerator) {}

  get aborted(): number {
    return this.abortedCount;
  }

  run<T>(client: Client, generations: number, work: (generate: Generate) => Promise<T>): Promise<T> {
    const request: RequestState = { cut: false };
    const generator = this.generator;
    let turn: Promise<T>;
    if (isBatching(generator)) {
      turn = (async () => {
        client.ensurePresent();
        this.ensureNotStopping(request);
        if (generations > generator.capacity) {
          throw new ApiError(
            ErrorCode.PARAM_OUT_OF_RANGE,
            `this request asks for ${generations} generations (n × prompts), more than this server runs and queues at once (${generator.capacity}); send fewer per request`,
          );
        }
        generator.checkRoom(generations);
        return work(this.generateFor(client, request, (prompt, opts) => generator.generate(prompt, opts)));
      })();
    } else {
      turn = this.tail.then(() => {
        client.ensurePresent();
        this.ensureNotStopping(request);
        return work(this.generateFor(client, request, oneAtATime((prompt, opts) => generator.generate(prompt, opts))));
      });
      this.tail = turn.catch(() => undefined);
    }
    this.inFlight.add(turn);
    const done = () => this.inFlight.delete(turn);
    turn.then(done, done);
    return turn;
  }

  async idle(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
  }

  abortAll(error: ServerStopping): void {
    this.stopping = error;
    if (isBatching(this.generator)) this.generator.abortAll(error);
  }

  private ensureNotStopping(request: RequestState): void {
    if (!this.stopping) return;
    this.markCut(request);
    throw this.stopping;
  }

  private markCut(request: RequestState): void {
    if (request.cut) return;
    request.cut = true;
    this.abortedCount++;
  }

  /** Generation that stops (ClientGone, ServerStopping) at the first piece of text after the client has left or the server cut it. */
  private generateFor(client: Client, request: RequestState, generate: Generate): Generate {
    return (prompt, opts) =>
      generate(prompt, {
        ...opts,
        onText: (t) => {
          client.ensurePresent();
          this.ensureNotStopping(request);
          opts.onText?.(t);
        },
      }).catch((e: unknown) => {
        if (e instanceof ServerStopping) this.markCut(request);
        throw e;
      });
  }
}

/**
 * `generate` for one request of a one-at-a-time generator: calls made at once run one after
 * another; after one fails, the later ones fail with its error without running.
 */
function oneAtATime(generate: Generate): Generate {
  let tail: Promise<unknown> = Promise.resolve();
  let failure: { error: unknown } | null = null;
  return (prompt, opts) => {
    const result = tail.then(() => {
      if (failure) throw failure.error;
      return generate(prompt, opts);
    });
    tail = result.catch((error: unknown) => {
      failure ??= { error };
    });
    return result;
  };
}
