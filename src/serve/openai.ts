/**
 * The request bodies of the OpenAI API as `wgpu-char serve` reads them: every field's type, range
 * and default in one place, checked on arrival, before the request waits for the model. Error
 * messages and codes are FastChat's (`check_requests`, `check_length`), e.g. "3 is greater than the
 * maximum of 2 - 'temperature'" (40302).
 *
 * Both generation endpoints take: model (one of the served names), max_tokens (or chat's newer
 * max_completion_tokens; null means the rest of the context, `context - prompt_tokens - 1`, one
 * less than FastChat's edit, which makes the worker drop the prompt's first token, BOS),
 * temperature, top_p (0 keeps only the most likely token, i.e. greedy, as in chat and generate),
 * stop (a string or strings; "" is dropped), stream, stream_options.include_usage,
 * repetition_penalty (FastChat's extension, HF semantics), `seed` (OpenAI's: the sampler's seed;
 * without it a random one is drawn, so only a seeded request is reproducible; the sampler takes 32
 * bits, so a seed is used modulo 2^32, and seeds 2^32 apart give the same output: refusing the
 * 64-bit seeds clients draw would break them, and the mapping keeps every seed reproducible) and
 * `n` (1 to MAX_N choices per prompt; choice j of a prompt is generated with seed + j, so each
 * choice is reproducible on its own, and n = 1 is the plain request).
 *
 * Logprobs (src/gen/sequence.ts computes them: the model's distribution after the repetition
 * penalty, before temperature and top-p): completions take OpenAI's legacy `logprobs` (an integer
 * 0-5: that many alternatives per token; null or false: none), chat takes `logprobs: true` with
 * `top_logprobs` (0-20; given without `logprobs: true` it is refused, as OpenAI does).
 *
 * No field is silently dropped. Unlike FastChat (whose pydantic models ignore unknown fields), a
 * field the endpoint does not know is a 400 "Unrecognized request argument supplied: <field>", as
 * OpenAI answers it: a client that sends e.g. `logit_bias` or `min_p` gets told instead of getting
 * output that ignored it. Known fields of features this server does not have are accepted only at
 * their "off" value and refused otherwise (40302): best_of > 1, tools/functions, logit_bias (non-empty), suffix (non-empty: no
 * insertion), top_k other than -1/0 (FastChat's and vLLM's "off"), use_beam_search, response_format
 * other than text (nothing constrains the output to JSON), and presence_penalty/frequency_penalty
 * other than 0. The penalties are refused rather than implemented: OpenAI's definition subtracts
 * `presence·[count>0] + frequency·count` over the GENERATED tokens from the logits, which needs
 * per-token counts inside the decode loop (src/gen/generate.ts, whose GPU softmax gets the logits
 * directly and whose only penalty is HF's multiplicative one over the whole context), so accepting
 * them as FastChat does would silently sample without them; `repetition_penalty` is the supported
 * way to curb repetition. Accepted and ignored, since they cannot change the output: `user` (an
 * end-user id for abuse monitoring) and `stream_options` on an unstreamed request (its usage is
 * always in the answer).
 *
 * Prompt tokens (BOS included) plus max_tokens must fit the context (40303). A prompt is checked
 * first against a bound from its length alone (prompt-length.ts: a huge prompt is refused without
 * being tokenised) and then tokenised in chunks that leave the event loop free for other requests.
 * A prompt of token ids is refused when it has more ids than the context holds, before decoding.
 */
import { randomBytes } from 'node:crypto';
import { EOT } from '../data/prompted.ts';
import { ChatPromptError, chatPromptFromClientChat, type CharacterSpec, type ClientChat } from '../gen/chat-prompt.ts';
import type { GenerateOptions, Generator } from '../gen/generate.ts';
import { MAX_TOP_LOGPROBS } from '../gen/sequence.ts';
import { ApiError, ErrorCode } from './errors.ts';
import type { Json } from './http.ts';
import { countPromptTokens, maxUnitsPerToken, promptTokensAtLeast } from './prompt-length.ts';

/** FastChat's defaults. Chat's max_tokens defaults to the rest of the context (the project's FastChat edit). */
const DEFAULTS = { completionMaxTokens: 16, temperature: 0.7, topP: 1.0, n: 1, repetitionPenalty: 1.0, echo: false, stream: false } as const;

/** OpenAI's maxima: choices per prompt, completions' legacy `logprobs`, chat's `top_logprobs`. */
export const MAX_N = 128;
export const MAX_COMPLETION_LOGPROBS = 5;
export const MAX_CHAT_TOP_LOGPROBS = MAX_TOP_LOGPROBS;

/** The fields both generation endpoints know (see the file header for what each does or why it is refused). */
const COMMON_FIELDS = [
  'model', 'max_tokens', 'temperature', 'top_p', 'n', 'stop', 'stream', 'stream_options', 'seed', 'repetition_penalty',
  'presence_penalty', 'frequency_penalty', 'user', 'logprobs', 'logit_bias', 'top_k',
] as const;
/** POST /v1/completions's fields. */
const COMPLETION_FIELDS: ReadonlySet<string> = new Set([...COMMON_FIELDS, 'prompt', 'echo', 'suffix', 'best_of', 'use_beam_search']);
/** POST /v1/chat/completions's fields (`character` is ours). */
const CHAT_FIELDS: ReadonlySet<string> = new Set([
  ...COMMON_FIELDS, 'messages', 'character', 'max_completion_tokens', 'top_logprobs', 'response_format', 'tools', 'functions', 'tool_choice', 'function_call',
]);

/** What validation needs of the model: its tokenizer (token-id prompts, token counts) and context length. */
export type ModelLimits = Pick<Generator, 'tokenizer' | 'contextLength'>;

/**
 * The settings of a generation that a request gives for all of its prompts (`seed` is choice 0's:
 * choice j gets seed + j); `logprobs` is the number of alternatives per token, absent for none.
 */
export type GenerationSettings = Omit<GenerateOptions, 'maxNewTokens' | 'onText' | 'onToken' | 'onPromptCut'>;

/** A prompt ready to generate from. */
export interface PromptJob {
  prompt: string;
  /** max_tokens resolved, and checked to fit the context with the prompt. */
  maxNewTokens: number;
}

interface GenerationRequest {
  model: string;
  /** Choices per prompt. */
  n: number;
  stream: boolean;
  includeUsage: boolean;
  generation: GenerationSettings;
}

/** POST /v1/completions: the raw prompt(s), no template. */
export interface CompletionRequest extends GenerationRequest {
  /** One per prompt, in order: a string, strings, or token ids of our vocabulary (a list of ints, or of such lists). */
  jobs: PromptJob[];
  /** Whether each choice's text starts with its prompt. */
  echo: boolean;
}

/** POST /v1/chat/completions: the messages as a character prompt (chat-prompt.ts). */
export interface ChatRequest extends GenerationRequest {
  job: PromptJob;
  /** The character's short name. */
  shortName: string;
}

/** The server's answers for a chat that names no character itself. */
export interface ChatDefaults {
  character?: CharacterSpec;
  userName?: string;
}

/** Checks a completion request; async because its prompts are tokenised without blocking (see the file header). */
export async function parseCompletionRequest(body: Json, modelNames: readonly string[], model: ModelLimits): Promise<CompletionRequest> {
  rejectUnknownFields(body, COMPLETION_FIELDS);
  const common = parseCommonFields(body, modelNames);
  rejectUnsupportedCompletionFields(body);
  const logprobs = parseCompletionLogprobs(body);
  const prompts = parsePrompts(body.prompt);
  const echo = optBool(body, 'echo', DEFAULTS.echo);
  if (echo && logprobs.logprobs !== undefined) throw outOfRange(`'logprobs' with 'echo' is not supported by this server (the prompt's tokens get no logprobs) - 'logprobs'`);
  const maxTokens = common.maxTokens === undefined ? DEFAULTS.completionMaxTokens : common.maxTokens;
  const jobs: PromptJob[] = [];
  for (const p of prompts) {
    const prompt = typeof p === 'string' ? p : decodePromptIds(p, model, maxTokens);
    jobs.push({ prompt, maxNewTokens: await resolveMaxTokens(model, prompt, maxTokens) });
  }
  // No default stop string: only EOS ends a raw completion early.
  return { ...common.request, generation: { ...common.generation, stop: common.stop, stopOnSpeakerTag: false, ...logprobs }, jobs, echo };
}

/** Checks a chat request; async because its prompt is tokenised without blocking (see the file header). */
export async function parseChatRequest(body: Json, modelNames: readonly string[], model: ModelLimits, defaults: ChatDefaults): Promise<ChatRequest> {
  rejectUnknownFields(body, CHAT_FIELDS);
  const common = parseCommonFields(body, modelNames);
  rejectUnsupportedChatFields(body);
  const logprobs = parseChatLogprobs(body);
  if (body.messages === undefined || body.messages === null) throw typeError('messages', 'given');
  const { prompt, shortName } = buildChatCompletionPrompt(body.messages, body.character, defaults);
  const job = { prompt, maxNewTokens: await resolveMaxTokens(model, prompt, common.maxTokens ?? null) };
  // The character's turn ends at EOT or where another speaker's tag starts a line, as in `wgpu-char chat`.
  const stop = [EOT, ...common.stop.filter((s) => s !== EOT)];
  return { ...common.request, generation: { ...common.generation, stop, stopOnSpeakerTag: true, ...logprobs }, job, shortName };
}

/** POST /api/v1/token_check (FastChat's): `{prompts: [{model, prompt, max_tokens}]}`. */
export function parseTokenCheckRequest(body: Json): { prompt: string; maxTokens: number }[] {
  const list = body.prompts;
  if (!Array.isArray(list)) throw typeError('prompts', 'a list of {model, prompt, max_tokens}');
  return list.map((p: Json, i) => {
    if (!p || typeof p !== 'object' || typeof p.prompt !== 'string') throw typeError(`prompts[${i}].prompt`, 'a string');
    return { prompt: p.prompt, maxTokens: optInt(p, 'max_tokens') ?? 0 };
  });
}

/**
 * The fields both generation endpoints share (see the file header), in FastChat's order of checks.
 * `maxTokens` is undefined when absent (the endpoint's default) and null for the rest of the context.
 */
function parseCommonFields(body: Json, modelNames: readonly string[]) {
  const model = parseModel(body, modelNames);
  const maxTokens = parseMaxTokens(body);
  const n = inRange('n', optInt(body, 'n') ?? DEFAULTS.n, 1, MAX_N);
  const temperature = inRange('temperature', optNumber(body, 'temperature', DEFAULTS.temperature), 0, 2);
  // top_p 0 is passed on as 0: the sampler keeps the single most likely token for it (greedy).
  const topP = inRange('top_p', optNumber(body, 'top_p', DEFAULTS.topP), 0, 1);
  const stop = parseStop(body);
  const stream = optBool(body, 'stream', DEFAULTS.stream);
  const includeUsage = parseIncludeUsage(body);
  const seed = parseSeed(body);
  for (const f of ['presence_penalty', 'frequency_penalty']) {
    const v = inRange(f, optNumber(body, f, 0), -2, 2); // OpenAI's range
    // Refused, not ignored: see the file header for why they are not implemented.
    if (v !== 0) throw outOfRange(`${v}: '${f}' is not supported by this server, only 0 (use 'repetition_penalty', e.g. 1.1-1.3, to curb repetition) - '${f}'`);
  }
  const repetitionPenalty = optNumber(body, 'repetition_penalty', DEFAULTS.repetitionPenalty);
  if (!(repetitionPenalty > 0)) throw outOfRange(`${repetitionPenalty} is less than or equal to the minimum of 0 - 'repetition_penalty'`);
  rejectUnsupported(body);
  return { request: { model, n, stream, includeUsage }, generation: { temperature, topP, seed, repetitionPenalty }, maxTokens, stop };
}

function parseModel(body: Json, modelNames: readonly string[]): string {
  const model = body.model ?? modelNames[0];
  if (typeof model !== 'string') throw typeError('model', 'a string');
  if (!modelNames.includes(model)) throw new ApiError(ErrorCode.INVALID_MODEL, `Only ${modelNames.join('&&')} allowed now, your model ${model}`);
  return model;
}

function parseMaxTokens(body: Json): number | null | undefined {
  // Newer OpenAI clients send chat's limit as max_completion_tokens (the completions endpoint refuses it as unknown).
  const maxTokens = optInt(body, 'max_tokens');
  const maxCompletionTokens = optInt(body, 'max_completion_tokens');
  if (typeof maxTokens === 'number' && typeof maxCompletionTokens === 'number' && maxTokens !== maxCompletionTokens) {
    throw outOfRange(`'max_tokens' (${maxTokens}) and 'max_completion_tokens' (${maxCompletionTokens}) disagree: give one of them - 'max_tokens'`);
  }
  const given = maxTokens ?? maxCompletionTokens ?? (body.max_tokens === null ? null : undefined);
  return typeof given === 'number' ? inRange('max_tokens', given, 1) : given;
}

function parseStop(body: Json): string[] {
  const v = body.stop;
  if (v === undefined || v === null) return [];
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list) || !list.every((s) => typeof s === 'string')) throw outOfRange(`${JSON.stringify(v)} is not valid under any of the given schemas - 'stop'`);
  return (list as string[]).filter((s) => s !== '');
}

function parseIncludeUsage(body: Json): boolean {
  const so = body.stream_options;
  if (so === undefined || so === null) return false;
  if (typeof so !== 'object' || Array.isArray(so)) throw typeError('stream_options', 'an object');
  return optBool(so as Json, 'include_usage', false);
}

function parseSeed(body: Json): number {
  const seed = optInt(body, 'seed');
  return typeof seed === 'number' ? seed >>> 0 : randomBytes(4).readUInt32LE(0);
}

/** A field the endpoint does not know, in OpenAI's words (see the file header: nothing is silently dropped). */
function rejectUnknownFields(body: Json, known: ReadonlySet<string>): void {
  const unknown = Object.keys(body).filter((k) => !known.has(k));
  if (unknown.length > 0) {
    throw outOfRange(`Unrecognized request argument supplied: ${unknown.join(', ')} (this endpoint takes: ${[...known].join(', ')})`);
  }
}

/** Known fields of features both endpoints lack: accepted at their "off" value only. */
function rejectUnsupported(body: Json): void {
  const logitBias = body.logit_bias;
  if (logitBias !== undefined && logitBias !== null) {
    if (typeof logitBias !== 'object' || Array.isArray(logitBias)) throw typeError('logit_bias', 'an object');
    if (Object.keys(logitBias).length > 0) throw outOfRange(`'logit_bias' is not supported by this server (only {}) - 'logit_bias'`);
  }
  // FastChat's and vLLM's extension; -1 (their default) and 0 (HF's) both mean no top-k cut.
  const topK = optInt(body, 'top_k');
  if (typeof topK === 'number' && topK !== -1 && topK !== 0) throw outOfRange(`${topK}: 'top_k' is not supported by this server, only -1 or 0 (off); use 'top_p' - 'top_k'`);
  if (typeof body.user !== 'string' && body.user !== undefined && body.user !== null) throw typeError('user', 'a string');
}

function rejectUnsupportedCompletionFields(body: Json): void {
  const bestOf = optInt(body, 'best_of');
  if (typeof bestOf === 'number' && bestOf !== 1) throw outOfRange(`${bestOf} is not supported, only 1 - 'best_of'`);
  const suffix = body.suffix;
  if (suffix !== undefined && suffix !== null) {
    if (typeof suffix !== 'string') throw typeError('suffix', 'a string');
    if (suffix !== '') throw outOfRange(`'suffix' is not supported by this server (no insertion: only "" or null) - 'suffix'`);
  }
  if (optBool(body, 'use_beam_search', false)) throw outOfRange(`'use_beam_search' is not supported by this server (only false) - 'use_beam_search'`);
}

function rejectUnsupportedChatFields(body: Json): void {
  for (const f of ['tools', 'functions', 'tool_choice', 'function_call']) {
    if (body[f] !== undefined && body[f] !== null) throw outOfRange(`'${f}' is not supported by this server`);
  }
  parseResponseFormat(body.response_format);
}

/** Completions' legacy `logprobs`: an integer 0-5 (alternatives per token); null or false: none. */
function parseCompletionLogprobs(body: Json): { logprobs?: number } {
  const v = body.logprobs;
  if (v === undefined || v === null || v === false) return {};
  if (typeof v !== 'number' || !Number.isInteger(v)) throw typeError('logprobs', 'an integer (0-5) or null');
  return { logprobs: inRange('logprobs', v, 0, MAX_COMPLETION_LOGPROBS) };
}

/** Chat's `logprobs` (a boolean) and `top_logprobs` (0-20, only with `logprobs: true`). */
function parseChatLogprobs(body: Json): { logprobs?: number } {
  const on = optBool(body, 'logprobs', false);
  const top = optInt(body, 'top_logprobs');
  if (typeof top === 'number') {
    inRange('top_logprobs', top, 0, MAX_CHAT_TOP_LOGPROBS);
    if (!on) throw outOfRange(`'top_logprobs' needs 'logprobs': true - 'top_logprobs'`);
  }
  return on ? { logprobs: top ?? 0 } : {};
}

/** `response_format`: only `{type: "text"}` (the default); JSON modes would need constrained decoding. */
function parseResponseFormat(v: unknown): void {
  if (v === undefined || v === null) return;
  if (typeof v !== 'object' || Array.isArray(v) || typeof (v as Json).type !== 'string') throw typeError('response_format', 'an object {type: "text"}');
  const type = (v as Json).type as string;
  if (type !== 'text') {
    throw outOfRange(`response_format type ${JSON.stringify(type)} is not supported by this server, only "text" (nothing constrains the model's output to JSON) - 'response_format'`);
  }
}

/** Completion prompts: a string, strings, or token ids (a list of ints, or of such lists), not decoded yet. */
function parsePrompts(v: unknown): (string | number[])[] {
  const what = 'a string, a list of strings, or token ids';
  const ids = (x: unknown[]): number[] => {
    if (!x.every((id) => typeof id === 'number' && Number.isInteger(id))) throw typeError('prompt', what);
    return x as number[];
  };
  if (v === undefined || v === null) throw typeError('prompt', 'given');
  if (typeof v === 'string') return [v];
  if (!Array.isArray(v) || v.length === 0) throw typeError('prompt', what);
  if (v.every((x) => typeof x === 'string')) return v as string[];
  if (typeof v[0] === 'number') return [ids(v)];
  if (v.every((x) => Array.isArray(x))) return v.map((x) => ids(x as unknown[]));
  throw typeError('prompt', what);
}

/**
 * A prompt of token ids as text (the generator takes text and tokenises it again). More ids than the
 * context holds with `maxTokens` (at least 1) is refused before decoding: as OpenAI counts, the
 * prompt IS that many tokens, and it bounds the work (decoding 4 M ids held the event loop 1.5 s).
 */
function decodePromptIds(ids: number[], model: ModelLimits, maxTokens: number | null): string {
  const m = maxTokens ?? 1;
  if (ids.length + m > model.contextLength) throw contextOverflow(model.contextLength, `you requested at least ${ids.length + m} tokens (${ids.length} token ids in the prompt, ${m} in the completion)`);
  try {
    return model.tokenizer.decode(ids);
  } catch (e) {
    throw outOfRange(`${(e as Error).message} - 'prompt'`);
  }
}

/**
 * The character prompt of a chat request's `messages` and `character` fields. `messages` may also
 * be a bare string (FastChat accepts one), taken as a single user message.
 */
export function buildChatCompletionPrompt(messages: unknown, character: unknown, defaults: ChatDefaults = {}): { prompt: string; shortName: string } {
  const requested = parseCharacter(character, 'character');
  const chat = parseMessages(messages);
  try {
    return chatPromptFromClientChat(chat, { character: requested, defaultCharacter: defaults.character, userName: defaults.userName });
  } catch (e) {
    if (e instanceof ChatPromptError) throw outOfRange(e.message);
    throw e;
  }
}

/** `messages`: system (or developer, only first), user (with an optional speaker `name`) and assistant messages. */
function parseMessages(v: unknown): ClientChat {
  const messages = typeof v === 'string' ? [{ role: 'user', content: v }] : v;
  if (!Array.isArray(messages)) throw typeError('messages', 'a list of {role, content}');
  const chat: { system?: string; turns: ClientChat['turns'][number][] } = { turns: [] };
  messages.forEach((m: Json, i) => {
    if (!m || typeof m !== 'object' || Array.isArray(m)) throw typeError(`messages[${i}]`, 'an object {role, content}');
    const role = m.role;
    if (role === 'system' || role === 'developer') {
      if (i !== 0) throw outOfRange(`messages[${i}]: the system message must be the first message, and there can be only one (it is the prompt's header)`);
      chat.system = messageText(m, i);
    } else if (role === 'user') {
      if (m.name !== undefined && m.name !== null && typeof m.name !== 'string') throw typeError(`messages[${i}].name`, 'a string');
      chat.turns.push({ role, name: typeof m.name === 'string' ? m.name : undefined, content: messageText(m, i) });
    } else if (role === 'assistant') {
      chat.turns.push({ role, content: messageText(m, i) });
    } else {
      throw outOfRange(`messages[${i}]: unknown role ${JSON.stringify(role)} (use system, user or assistant)`);
    }
  });
  return chat;
}

/** A message's content: a string, or a list of `{type: "text", text}` parts, joined. */
function messageText(m: Json, i: number): string {
  const c = m.content;
  if (typeof c === 'string') return c;
  if (!Array.isArray(c)) throw typeError(`messages[${i}].content`, 'a string or a list of text parts');
  return c
    .map((p) => {
      if (p && typeof p === 'object' && (p as Json).type === 'text' && typeof (p as Json).text === 'string') return (p as Json).text as string;
      throw outOfRange(`messages[${i}].content: only text parts are supported`);
    })
    .join('');
}

/** Our `character` extension field: `{name, full_name?, location?, status?}`. */
function parseCharacter(v: unknown, field: string): CharacterSpec | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw typeError(field, 'an object {name, full_name?, location?, status?}');
  const o = v as Json;
  if (typeof o.name !== 'string' || o.name.trim() === '') throw typeError(`${field}.name`, 'a non-empty string');
  for (const f of ['full_name', 'location', 'status']) {
    if (o[f] !== undefined && o[f] !== null && typeof o[f] !== 'string') throw typeError(`${field}.${f}`, 'a string');
  }
  return { name: o.name.trim(), full_name: (o.full_name as string) ?? undefined, location: (o.location as string) ?? undefined, status: (o.status as string) ?? undefined };
}

/**
 * FastChat's `check_length`, with `max_tokens: null` resolved to the rest of the context; first the
 * length bound (prompt-length.ts), which refuses a prompt that certainly cannot fit without
 * tokenising it, then the exact count, tokenised in chunks that yield to the event loop.
 */
async function resolveMaxTokens(model: ModelLimits, prompt: string, maxTokens: number | null): Promise<number> {
  const ctx = model.contextLength;
  const atLeast = promptTokensAtLeast(model.tokenizer, prompt);
  const minCompletion = maxTokens ?? 1;
  if (atLeast + minCompletion > ctx) {
    throw contextOverflow(
      ctx,
      `you requested at least ${atLeast + minCompletion} tokens (at least ${atLeast} in the messages: ${prompt.length} characters, and no token of this model covers more than ${maxUnitsPerToken(model.tokenizer)}; ${minCompletion} in the completion)`,
    );
  }
  const promptTokens = await countPromptTokens(model.tokenizer, prompt);
  const m = maxTokens ?? Math.max(1, ctx - promptTokens - 1);
  if (promptTokens + m > ctx) throw contextOverflow(ctx, `you requested ${m + promptTokens} tokens (${promptTokens} in the messages, ${m} in the completion)`);
  return m;
}

/** FastChat's (and OpenAI's) context-length error. */
function contextOverflow(ctx: number, requested: string): ApiError {
  return new ApiError(
    ErrorCode.CONTEXT_OVERFLOW,
    `This model's maximum context length is ${ctx} tokens. However, ${requested}. Please reduce the length of the messages or completion.`,
  );
}

// Field readers: absent or null gives the default; a value of another type is a 40001.

function optNumber(body: Json, field: string, dflt: number): number {
  const v = body[field];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw typeError(field, 'a number');
  return v;
}

function optInt(body: Json, field: string): number | null | undefined {
  const v = body[field];
  if (v === undefined || v === null) return v;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw typeError(field, 'an integer');
  return v;
}

function optBool(body: Json, field: string, dflt: boolean): boolean {
  const v = body[field];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'boolean') throw typeError(field, 'a boolean');
  return v;
}

/** `v` if within [min, max], else FastChat's out-of-range error (`maxNote` follows its "greater than" message). */
function inRange(field: string, v: number, min: number, max = Infinity, maxNote = ''): number {
  if (v < min) throw outOfRange(`${v} is less than the minimum of ${min} - '${field}'`);
  if (v > max) throw outOfRange(`${v} is greater than the maximum of ${max} - '${field}'${maxNote}`);
  return v;
}

function typeError(field: string, what: string): ApiError {
  return new ApiError(ErrorCode.VALIDATION_TYPE_ERROR, `'${field}' must be ${what}`);
}

function outOfRange(message: string): ApiError {
  return new ApiError(ErrorCode.PARAM_OUT_OF_RANGE, message);
}
