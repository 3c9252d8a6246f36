/**
 * The answers of the generation endpoints, whole or streamed (`stream: true`, sse.ts):
 * POST /v1/completions (one choice per prompt, in order), POST /v1/chat/completions (the
 * character's reply) and FastChat's POST /api/v1/token_check (whether prompts fit the context).
 *
 * finish_reason is 'length' when max_tokens were generated (or the context filled up), else 'stop'
 * (EOS, or a stop string, which is cut from the text). usage counts the prompt tokens actually used
 * (BOS included; `Generator.generate` keeps only the last tokens of a prompt too long for its room)
 * and the generated tokens (an EOS counts).
 *
 * Streamed completions: per prompt, chunks `{object:"text_completion", choices:[{index, text,
 * logprobs:null, finish_reason:null}]}` as text becomes final (with `echo`, the prompt first), then
 * one with text "" and the finish_reason. Streamed chat: a first chunk `delta:{role:"assistant"}`,
 * then `delta:{content}` chunks, then `delta:{}` with the finish_reason; the deltas concatenate to
 * the content of the same request unstreamed (ReplyText holds back the action head and trailing
 * whitespace until they are known). `stream_options.include_usage` adds a last chunk with
 * `choices: []` and usage.
 *
 * A stream the server cuts at shutdown (its drain timed out, scheduler.ts) ends like a finished one,
 * with finish_reason "abort" (the text held back is sent first) and then [DONE], so that a client
 * can tell a cut reply from a complete one; it has no usage chunk (the generation's counts are lost
 * with it). An answer not started yet is a 503 instead (http.ts answers the error).
 */
import { randomUUID } from 'node:crypto';
import { ReplyText } from '../gen/chat-prompt.ts';
import type { GenerateResult } from '../gen/generate.ts';
import { readJsonObject, sendJson, type Exchange } from './http.ts';
import { parseChatRequest, parseCompletionRequest, parseTokenCheckRequest, type ChatRequest, type CompletionRequest } from './openai.ts';
import { countPromptTokens } from './prompt-length.ts';
import { ServerStopping, type Generate } from './scheduler.ts';
import type { ServeApp } from './app.ts';
import { EventStream } from './sse.ts';

/** The fields every response object of one request starts with. */
type ResponseHead = { id: string; object: string; created: number; model: string };

function responseHead(idPrefix: string, object: string, model: string): ResponseHead {
  return { id: `${idPrefix}-${randomUUID().replaceAll('-', '')}`, object, created: Math.floor(Date.now() / 1000), model };
}

function usageOf(results: readonly GenerateResult[]) {
  const prompt_tokens = results.reduce((a, r) => a + r.promptTokens, 0);
  const completion_tokens = results.reduce((a, r) => a + r.newTokens, 0);
  return { prompt_tokens, completion_tokens, total_tokens: prompt_tokens + completion_tokens };
}

export async function completions(app: ServeApp, ex: Exchange): Promise<string> {
  const request = await parseCompletionRequest(await readJsonObject(ex.req), app.modelNames, app.generator);
  const head = responseHead('cmpl', 'text_completion', request.model);
  return app.scheduler.run(ex.client, async (generate) => {
    const results = request.stream ? await streamCompletions(ex, request, head, generate) : await answerCompletions(ex, request, head, generate);
    if (results === 'abort') return `${request.jobs.length} prompt(s), cut by the shutdown (finish_reason "abort")`;
    const usage = usageOf(results);
    return `${request.jobs.length} prompt(s), ${usage.prompt_tokens} + ${usage.completion_tokens} tokens`;
  });
}

async function answerCompletions(ex: Exchange, request: CompletionRequest, head: ResponseHead, generate: Generate): Promise<GenerateResult[]> {
  const results: GenerateResult[] = [];
  const choices = [];
  for (const [index, job] of request.jobs.entries()) {
    const r = await generate(job.prompt, { ...request.generation, maxNewTokens: job.maxNewTokens });
    results.push(r);
    choices.push({ index, text: (request.echo ? job.prompt : '') + r.text, logprobs: null, finish_reason: r.finishReason });
  }
  sendJson(ex.res, 200, { ...head, choices, usage: usageOf(results) });
  return results;
}

async function streamCompletions(ex: Exchange, request: CompletionRequest, head: ResponseHead, generate: Generate): Promise<GenerateResult[] | 'abort'> {
  const events = new EventStream(ex.res, ex.client);
  events.open();
  const results: GenerateResult[] = [];
  for (const [index, job] of request.jobs.entries()) {
    const send = (text: string, finishReason: string | null = null) => events.send({ ...head, choices: [{ index, text, logprobs: null, finish_reason: finishReason }] });
    if (request.echo) send(job.prompt);
    const r = await untilShutdown(generate(job.prompt, { ...request.generation, maxNewTokens: job.maxNewTokens, onText: (t) => send(t) }));
    if (r === 'abort') {
      // The prompts after this one are not generated: the stream ends here.
      send('', 'abort');
      events.end();
      return 'abort';
    }
    results.push(r);
    send('', r.finishReason);
  }
  if (request.includeUsage) events.send({ ...head, choices: [], usage: usageOf(results) });
  events.end();
  return results;
}

export async function chatCompletions(app: ServeApp, ex: Exchange): Promise<string> {
  const request = await parseChatRequest(await readJsonObject(ex.req), app.modelNames, app.generator, app.chatDefaults);
  const head = responseHead('chatcmpl', 'chat.completion', request.model);
  return app.scheduler.run(ex.client, async (generate) => {
    const r = request.stream ? await streamChat(ex, request, { ...head, object: 'chat.completion.chunk' }, generate) : await answerChat(ex, request, head, generate);
    if (r === 'abort') return `${request.shortName}: cut by the shutdown (finish_reason "abort")`;
    return `${request.shortName}: ${r.promptTokens} + ${r.newTokens} tokens, ${r.finishReason}`;
  });
}

async function answerChat(ex: Exchange, request: ChatRequest, head: ResponseHead, generate: Generate): Promise<GenerateResult> {
  const r = await generate(request.job.prompt, { ...request.generation, maxNewTokens: request.job.maxNewTokens });
  const reply = new ReplyText();
  const content = reply.push(r.text) + reply.flush();
  sendJson(ex.res, 200, { ...head, choices: [{ index: 0, message: { role: 'assistant', content }, logprobs: null, finish_reason: r.finishReason }], usage: usageOf([r]) });
  return r;
}

async function streamChat(ex: Exchange, request: ChatRequest, chunkHead: ResponseHead, generate: Generate): Promise<GenerateResult | 'abort'> {
  const events = new EventStream(ex.res, ex.client);
  const send = (delta: object, finishReason: string | null = null) => events.send({ ...chunkHead, choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }] });
  const sendContent = (content: string) => {
    if (content) send({ content });
  };
  events.open();
  send({ role: 'assistant' });
  const reply = new ReplyText();
  const r = await untilShutdown(generate(request.job.prompt, { ...request.generation, maxNewTokens: request.job.maxNewTokens, onText: (t) => sendContent(reply.push(t)) }));
  sendContent(reply.flush());
  if (r === 'abort') {
    send({}, 'abort');
    events.end();
    return 'abort';
  }
  send({}, r.finishReason);
  if (request.includeUsage) events.send({ ...chunkHead, choices: [], usage: usageOf([r]) });
  events.end();
  return r;
}

/** A generation's result, or 'abort' when the shutdown cut it (any other failure is thrown on). */
async function untilShutdown(generation: Promise<GenerateResult>): Promise<GenerateResult | 'abort'> {
  try {
    return await generation;
  } catch (e) {
    if (e instanceof ServerStopping) return 'abort';
    throw e;
  }
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
