/**
 * The answers of the generation endpoints, whole or streamed (`stream: true`, sse.ts):
 * POST /v1/completions (`n` choices per prompt), POST /v1/chat/completions (`n` replies of the
 * character) and FastChat's POST /api/v1/token_check (whether prompts fit the context).
 *
 * Choices: with `n`, prompt i's choice j has index i·n + j (OpenAI's order; chat has one prompt) and
 * is generated with seed + j. All of a request's choices are handed to the scheduler at once
 * (scheduler.ts: a batching generator runs them together, another one after another).
 *
 * finish_reason is 'length' when max_tokens were generated (or the context filled up), else 'stop'
 * (EOS, or a stop string, which is cut from the text). usage counts the prompt tokens actually used
 * (BOS included; generation keeps only the last tokens of a prompt too long for its room), each
 * prompt once however many choices continue it (as OpenAI counts), and the generated tokens of
 * every choice (an EOS counts). `logprobs` (when asked for): logprobs.ts; else null.
 *
 * Streamed completions: chunks `{object:"text_completion", choices:[{index, text, logprobs,
 * finish_reason:null}]}` as a choice's text becomes final (with `echo`, its prompt first; the
 * choices' chunks interleave), then one per choice with text "" and its finish_reason. Streamed
 * chat: per choice a first chunk `delta:{role:"assistant"}`, then `delta:{content}` chunks, then
 * `delta:{}` with the finish_reason; a choice's deltas concatenate to its content unstreamed
 * (ReplyText holds back the action head and trailing whitespace until they are known). With
 * logprobs, a chunk carries those of the tokens sampled since the choice's previous chunk (the
 * tokens behind its text, and any whose text is still held back); the last chunk carries the rest.
 * `stream_options.include_usage` adds a last chunk with `choices: []` and usage.
 *
 * A stream the server cuts at shutdown (its drain timed out, scheduler.ts) ends like a finished one:
 * every choice not finished gets finish_reason "abort" (the text held back is sent first), then
 * [DONE], so that a client can tell a cut reply from a complete one; it has no usage chunk (the
 * generations' counts are lost with it). An answer not started yet is a 503 instead (http.ts
 * answers the error).
 */
import { randomUUID } from 'node:crypto';
import { ReplyText } from '../gen/chat-prompt.ts';
import type { GenerateOptions, GenerateResult, TokenLogprob } from '../gen/generate.ts';
import { readJsonObject, sendJson, type Exchange } from './http.ts';
import { chatLogprobs, CompletionLogprobsBuilder } from './logprobs.ts';
import {
  parseChatRequest,
  parseCompletionRequest,
  parseTokenCheckRequest,
  type ChatRequest,
  type CompletionRequest,
  type GenerationSettings,
  type PromptJob,
} from './openai.ts';
import { countPromptTokens } from './prompt-length.ts';
import { ServerStopping, type Generate } from './scheduler.ts';
import type { ServeApp } from './app.ts';
import { EventStream } from './sse.ts';

/** The fields every response object of one request starts with. */
type ResponseHead = { id: string; object: string; created: number; model: string };

function responseHead(idPrefix: string, object: string, model: string): ResponseHead {
  return { id: `${idPrefix}-${randomUUID().replaceAll('-', '')}`, object, created: Math.floor(Date.now() / 1000), model };
}

/** One choice of a response: its index, the prompt it continues, and its seed. */
interface Choice {
  index: number;
  job: PromptJob;
  seed: number;
}

/** `n` choices per prompt, indexed prompt_i·n + j as OpenAI orders them; choice j has seed + j (mod 2^32, as seeds are). */
function choicesOf(jobs: readonly PromptJob[], n: number, seed: number): Choice[] {
  return jobs.flatMap((job, i) => Array.from({ length: n }, (_, j) => ({ index: i * n + j, job, seed: (seed + j) >>> 0 })));
}

/** What a choice is generated with. */
function optionsOf(generation: GenerationSettings, choice: Choice): GenerateOptions {
  return { ...generation, seed: choice.seed, maxNewTokens: choice.job.maxNewTokens };
}

/** OpenAI's usage: each prompt's tokens once (however many choices continue it), every choice's tokens. `results` in index order. */
function usageOf(results: readonly GenerateResult[], n: number) {
  const prompt_tokens = results.reduce((a, r, i) => a + (i % n === 0 ? r.promptTokens : 0), 0);
  const completion_tokens = results.reduce((a, r) => a + r.newTokens, 0);
  return { prompt_tokens, completion_tokens, total_tokens: prompt_tokens + completion_tokens };
}

/** The log line's note for a request of `what`. */
function noteOf(what: string, n: number, results: readonly GenerateResult[] | 'abort'): string {
  const each = n > 1 ? ` × n=${n}` : '';
  if (results === 'abort') return `${what}${each}, cut by the shutdown (finish_reason "abort")`;
  const usage = usageOf(results, n);
  return `${what}${each}, ${usage.prompt_tokens} + ${usage.completion_tokens} tokens`;
}

export async function completions(app: ServeApp, ex: Exchange): Promise<string> {
  const request = await parseCompletionRequest(await readJsonObject(ex.req), app.modelNames, app.generator);
  const head = responseHead('cmpl', 'text_completion', request.model);
  const choices = choicesOf(request.jobs, request.n, request.generation.seed);
  return app.scheduler.run(ex.client, choices.length, async (generate) => {
    const run = request.stream ? streamCompletions : answerCompletions;
    return noteOf(`${request.jobs.length} prompt(s)`, request.n, await run(app, ex, request, choices, head, generate));
  });
}

async function answerCompletions(app: ServeApp, ex: Exchange, request: CompletionRequest, choices: Choice[], head: ResponseHead, generate: Generate): Promise<GenerateResult[]> {
  const results = await Promise.all(choices.map((c) => generate(c.job.prompt, optionsOf(request.generation, c))));
  const body = results.map((r, i) => {
    const prefix = request.echo ? choices[i].job.prompt : '';
    const logprobs = request.generation.logprobs === undefined ? null : new CompletionLogprobsBuilder(app.generator.tokenizer, prefix.length).take(r.logprobs!);
    return { index: choices[i].index, text: prefix + r.text, logprobs, finish_reason: r.finishReason };
  });
  sendJson(ex.res, 200, { ...head, choices: body, usage: usageOf(results, request.n) });
  return results;
}

async function streamCompletions(app: ServeApp, ex: Exchange, request: CompletionRequest, choices: Choice[], head: ResponseHead, generate: Generate): Promise<GenerateResult[] | 'abort'> {
  const events = new EventStream(ex.res, ex.client);
  events.open();
  const streams: ChoiceStream[] = choices.map((c) => {
    const logprobs = request.generation.logprobs === undefined ? null : new CompletionLogprobsBuilder(app.generator.tokenizer, request.echo ? c.job.prompt.length : 0);
    const pending: TokenLogprob[] = [];
    const send = (text: string, finishReason: string | null = null) =>
      events.send({ ...head, choices: [{ index: c.index, text, logprobs: logprobs ? logprobs.take(pending.splice(0)) : null, finish_reason: finishReason }] });
    if (request.echo) send(c.job.prompt);
    return {
      result: generate(c.job.prompt, { ...optionsOf(request.generation, c), onText: (t) => send(t), ...(logprobs ? { onToken: (t: TokenLogprob) => pending.push(t) } : {}) }),
      finish: (finishReason) => send('', finishReason),
    };
  });
  const results = await streamChoices(streams);
  if (results !== 'abort' && request.includeUsage) events.send({ ...head, choices: [], usage: usageOf(results, request.n) });
  events.end();
  return results;
}

export async function chatCompletions(app: ServeApp, ex: Exchange): Promise<string> {
  const request = await parseChatRequest(await readJsonObject(ex.req), app.modelNames, app.generator, app.chatDefaults);
  const head = responseHead('chatcmpl', 'chat.completion', request.model);
  const choices = choicesOf([request.job], request.n, request.generation.seed);
  return app.scheduler.run(ex.client, choices.length, async (generate) => {
    const results = request.stream
      ? await streamChat(app, ex, request, choices, { ...head, object: 'chat.completion.chunk' }, generate)
      : await answerChat(app, ex, request, choices, head, generate);
    if (results === 'abort' || request.n > 1) return noteOf(request.shortName, request.n, results);
    const r = results[0];
    return `${request.shortName}: ${r.promptTokens} + ${r.newTokens} tokens, ${r.finishReason}`;
  });
}

async function answerChat(app: ServeApp, ex: Exchange, request: ChatRequest, choices: Choice[], head: ResponseHead, generate: Generate): Promise<GenerateResult[]> {
  const results = await Promise.all(choices.map((c) => generate(c.job.prompt, optionsOf(request.generation, c))));
  const body = results.map((r, i) => {
    const reply = new ReplyText();
    const content = reply.push(r.text) + reply.flush();
    const logprobs = request.generation.logprobs === undefined ? null : { content: chatLogprobs(app.generator.tokenizer, r.logprobs!) };
    return { index: choices[i].index, message: { role: 'assistant', content }, logprobs, finish_reason: r.finishReason };
  });
  sendJson(ex.res, 200, { ...head, choices: body, usage: usageOf(results, request.n) });
  return results;
}

async function streamChat(app: ServeApp, ex: Exchange, request: ChatRequest, choices: Choice[], chunkHead: ResponseHead, generate: Generate): Promise<GenerateResult[] | 'abort'> {
  const events = new EventStream(ex.res, ex.client);
  events.open();
  const wantLogprobs = request.generation.logprobs !== undefined;
  const streams: ChoiceStream[] = choices.map((c) => {
    const pending: TokenLogprob[] = [];
    const send = (delta: object, finishReason: string | null = null) => {
      const logprobs = wantLogprobs ? { content: chatLogprobs(app.generator.tokenizer, pending.splice(0)) } : null;
      events.send({ ...chunkHead, choices: [{ index: c.index, delta, logprobs, finish_reason: finishReason }] });
    };
    const sendContent = (content: string) => {
      if (content) send({ content });
    };
    const reply = new ReplyText();
    events.send({ ...chunkHead, choices: [{ index: c.index, delta: { role: 'assistant' }, logprobs: null, finish_reason: null }] });
    return {
      result: generate(c.job.prompt, { ...optionsOf(request.generation, c), onText: (t) => sendContent(reply.push(t)), ...(wantLogprobs ? { onToken: (t: TokenLogprob) => pending.push(t) } : {}) }),
      finish: (finishReason) => {
        sendContent(reply.flush());
        send({}, finishReason);
      },
    };
  });
  const results = await streamChoices(streams);
  if (results !== 'abort' && request.includeUsage) events.send({ ...chunkHead, choices: [], usage: usageOf(results, request.n) });
  events.end();
  return results;
}

/** A choice being streamed: its generation, and how to send its last chunk(s) with a finish_reason. */
interface ChoiceStream {
  result: Promise<GenerateResult>;
  finish(finishReason: string): void;
}

/**
 * Ends each choice's stream as its generation ends, and resolves once all have: with the results,
 * or 'abort' when the shutdown cut any (then every choice not finished ends with finish_reason
 * "abort"). Any other failure (a client gone) is thrown once all have settled.
 */
async function streamChoices(streams: readonly ChoiceStream[]): Promise<GenerateResult[] | 'abort'> {
  const finished = streams.map(() => false);
  const settled = await Promise.allSettled(
    streams.map(async (s, i) => {
      const r = await s.result;
      s.finish(r.finishReason);
      finished[i] = true;
      return r;
    }),
  );
  const failures = settled.flatMap((x) => (x.status === 'rejected' ? [x.reason as unknown] : []));
  const other = failures.find((e) => !(e instanceof ServerStopping));
  if (other !== undefined) throw other;
  if (failures.length > 0) {
    streams.forEach((s, i) => finished[i] || s.finish('abort'));
    return 'abort';
  }
  return settled.map((x) => (x as PromiseFulfilledResult<GenerateResult>).value);
}

export async function tokenCheck(app: ServeApp, ex: Exchange): Promise<string> {
  const prompts = parseTokenCheckRequest(await readJsonObject(ex.req));
  const contextLength = app.generator.contextLength;
  // The exact counts are the answer, so every prompt is tokenised, however long (in yielding chunks).
  const answers = [];
  for (const { prompt, maxTokens } of prompts) {
    const tokenCount = await countPromptTokens(app.generator.tokenizer, prompt);
    answers.push({ fits: tokenCount + maxTokens <= contextLength, tokenCount, contextLength });
  }
  sendJson(ex.res, 200, { prompts: answers });
  return '';
}
