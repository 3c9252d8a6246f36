/**
 * `wgpu-char serve`: an OpenAI-compatible HTTP API over one of our models, standing in for
 * FastChat's controller + model_worker + openai_api_server as the Character-LLM paper runs them
 * (spec §4.1, §4.2). node:http only; the base URL for clients ends in `/v1`.
 *
 * Endpoints
 * - GET  /v1/models, GET /v1/models/{id}: the served name(s) (`--model-name`, repeatable).
 * - POST /v1/completions: the raw prompt, no template (what the paper's interview scripts call,
 *   with `stop="<|eot|>"`). `prompt` is a string, a list of strings (one choice per prompt, in
 *   order), or token ids of OUR vocabulary (a list of ints, or a list of such lists), decoded with
 *   the model's tokenizer. Defaults as FastChat: max_tokens 16, temperature 0.7, top_p 1.0, n 1,
 *   echo false, stream false, repetition_penalty 1.0 (FastChat's extension, HF semantics). `echo: true`
 *   prepends the prompt text to the choice text.
 * - POST /v1/chat/completions: messages mapped to the paper's character prompt (below). max_tokens
 *   (or max_completion_tokens) defaults to "the rest of the context" (the project's FastChat edit).
 * - POST /api/v1/token_check: FastChat's `{prompts:[{model, prompt, max_tokens}]}` ->
 *   `{prompts:[{fits, tokenCount, contextLength}]}`.
 * Extensions: `seed` (integer; the sampler's seed; without it each request draws a random one, so
 * only a seeded request is reproducible) and, for chat, `character` (below).
 * Accepted and ignored, as FastChat does: presence_penalty, frequency_penalty, user, suffix.
 * Rejected with 400: n != 1 (one sequence per request), logprobs, best_of > 1, tools/functions.
 *
 * Generation follows FastChat's worker (`generate_stream`) through `Generator.generate`: BOS is
 * prepended; a prompt longer than the room `context - max_tokens - 1` keeps only its last tokens;
 * temperature < 1e-5 is greedy; top_p in [1e-8, 1) applies; EOS stops; each stop string stops and
 * is cut from the text (never returned). finish_reason is 'length' when max_tokens were generated
 * (or the context filled up), else 'stop'. usage counts the prompt tokens actually used (BOS
 * included) and the generated tokens (an EOS counts). The completion endpoint has no default stop
 * string (only EOS).
 *
 * Validation (before any generation), errors as FastChat: HTTP 400 with
 * `{object:"error", message, code}`, code 40001 (malformed JSON or a field of the wrong type),
 * 40301 (unknown model: "Only <names> allowed now, your model <m>"), 40302 (out of range:
 * "3 is greater than the maximum of 2 - 'temperature'", n, max_tokens, top_p), 40303 (context
 * overflow: prompt tokens + max_tokens > context, FastChat's message). max_tokens: null means the
 * rest of the context, `context - prompt_tokens - 1` (FastChat's edit uses `context -
 * prompt_tokens`, which makes the worker drop the prompt's first token, BOS). Unknown route: 404,
 * wrong method: 405, body over 8 MiB: 413, a failure inside generation: 500 (code 50001), all with
 * the same error object. The body also repeats it in OpenAI's shape, `error: {message, type, param,
 * code}`, which the openai clients read (FastChat's shape alone shows there as "400 status code (no
 * body)"). An error after a stream started is sent as one last `data: <that object>` event (the
 * `error` key makes the openai client raise it), then `data: [DONE]`.
 *
 * Chat -> character prompt (the paper's `LocalCharacter`, spec §4.2):
 * - Header: a `system` (or `developer`) message, if any, must be the first message and at most one;
 *   its content is the header as is, except that its trailing whitespace becomes exactly "\n\n"
 *   (the original appends "\n\n" to the stripped meta prompt, and `fillMetaPrompt` ends in "\n\n":
 *   both give the same prompt). Without one, the header is the SFT meta prompt filled from the
 *   request's `character` field `{name, full_name?, location?, status?}` or else the server's
 *   default character (`serve --character`): full_name defaults to the paper's full name of a known
 *   character (else name), location to "Coffee Shop - Afternoon", status to "<name> is casually
 *   chatting with a man from the 21st century.". Neither a system message nor a character: 400.
 * - The character's short name (for its turns and the final `<Short> (`): `character.name`, else
 *   the name in the system message's "I want you to act like <X>." (a known full name maps back to
 *   its short name: "Ludwig van Beethoven" -> "Beethoven"; any other X is used as is), else the
 *   server's default character; none of these: 400.
 * - A `user` message becomes `Man (speaking): <content><|eot|>\n` (the message's `name`, if given,
 *   replaces "Man"); an `assistant` message becomes `<Short> (speaking): <content><|eot|>\n`. Only
 *   the last 8 of these turns are kept (LocalCharacter's history window); they are not merged.
 *   Content is a string or a list of `{type:"text", text}` parts (joined); other roles: 400.
 * - The prompt ends with `<Short> (`, and the model writes the action itself (`speaking): ...` or
 *   `thinking): ...`). Stops: `<|eot|>`, the start of another speaker's tag on a new line (as
 *   `wgpu-char chat`), EOS, and the request's `stop` strings.
 * - The returned content is the reply without its `speaking): ` (or `thinking): `) head and
 *   without leading/trailing whitespace; if the model wrote no such head, the whole completion,
 *   trimmed. Streamed deltas are the same text: their concatenation equals the non-streamed
 *   content for the same seed (the head and any trailing whitespace are held back until known).
 *
 * Streaming (`stream: true`): Server-Sent Events, `data: <chunk JSON>\n\n`, ending `data: [DONE]`.
 * Completions: chunks `{object:"text_completion", choices:[{index, text, logprobs:null,
 * finish_reason:null}]}` as text becomes final, then one with text "" and the finish_reason. Chat:
 * a first chunk `delta:{role:"assistant"}`, `delta:{content}` chunks, then `delta:{}` with the
 * finish_reason. `stream_options.include_usage: true` adds a last chunk with `choices: []` and usage.
 *
 * Concurrency: the GPU model has one KV cache, so requests are served ONE AT A TIME, in arrival
 * order (a FIFO queue; a streaming request holds the model until its stream ends). Validation and
 * tokenization for the checks happen on arrival. A client that disconnects is dropped from the
 * queue, or its generation is stopped at the next piece of text.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EOT, fillMetaPrompt } from '../data/prompted.ts';
import { DEFAULT_LOCATION, defaultStatus, fullNameOf, KNOWN_CHARACTERS } from './characters.ts';
import { chatPromptFromHeader, ReplyText } from './chat-prompt.ts';
export { ReplyText }; // the streaming reply parser lives with the chat prompt it parses
import type { GenerateOptions, GenerateResult, Generator } from './generate.ts';

/** What the server needs of a Generator (a fake one can stand in for tests). */
export type TextGenerator = Pick<Generator, 'tokenizer' | 'contextLength'> & {
  generate(prompt: string, opts: GenerateOptions): Promise<GenerateResult>;
};

/** The `character` extension field of a chat request (and `serve --character`). */
export interface CharacterSpec {
  /** Short name, as in the turns (`Beethoven (speaking): ...`). */
  name: string;
  full_name?: string;
  location?: string;
  status?: string;
}

export interface ServerOptions {
  generator: TextGenerator;
  /** The served model name(s); requests must name one of them. */
  modelName: string | string[];
  host?: string;
  /** 0 picks a free port. Default 8000 (FastChat's, and what the paper's clients hard-code). */
  port?: number;
  /** Character for chat requests that carry neither a `character` field nor a usable system message. */
  character?: CharacterSpec;
  /** Speaker name of `user` messages without a `name` (default "Man", as in the paper's interviews). */
  userName?: string;
  /** One line per request (method, path, status, tokens, seconds). */
  log?: (line: string) => void;
}

export interface RunningServer {
  /** Base URL for OpenAI clients, ending in `/v1` (e.g. `http://127.0.0.1:8000/v1`). */
  url: string;
  port: number;
  /** Stops accepting, drops open connections, and waits for the generation in progress to end. */
  close(): Promise<void>;
}

/** FastChat's `ErrorCode` values used here. */
export const ErrorCode = {
  VALIDATION_TYPE_ERROR: 40001,
  INVALID_MODEL: 40301,
  PARAM_OUT_OF_RANGE: 40302,
  CONTEXT_OVERFLOW: 40303,
  INTERNAL_ERROR: 50001,
} as const;

/** An error answered as `{object:"error", message, code}` with an HTTP status (400 unless said). */
export class ApiError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly status = 400,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

const MAX_BODY_BYTES = 8 << 20;
const DEFAULT_USER_NAME = 'Man';

/** Thrown from `onText` to stop a generation whose client has gone. */
class ClientGone extends Error {}

// ---------------------------------------------------------------------------------------------
// Request parsing and validation

type Json = Record<string, unknown>;

function typeError(field: string, what: string): ApiError {
  return new ApiError(ErrorCode.VALIDATION_TYPE_ERROR, `'${field}' must be ${what}`);
}

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

function parseStop(body: Json): string[] {
  const v = body.stop;
  if (v === undefined || v === null) return [];
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list) || !list.every((s) => typeof s === 'string')) {
    throw new ApiError(ErrorCode.PARAM_OUT_OF_RANGE, `${JSON.stringify(v)} is not valid under any of the given schemas - 'stop'`);
  }
  return (list as string[]).filter((s) => s !== '');
}

interface Sampling {
  model: string;
  temperature: number;
  topP: number;
  /** undefined: absent (endpoint default); null: the rest of the context. */
  maxTokens: number | null | undefined;
  stop: string[];
  stream: boolean;
  includeUsage: boolean;
  seed: number;
  /** FastChat's `repetition_penalty` (HF semantics over prompt and output), default 1 = off. */
  repetitionPenalty: number;
}

/** The checks FastChat's `check_model` + `check_requests` make, plus our own unsupported fields. */
function parseSampling(body: Json, modelNames: string[]): Sampling {
  const model = body.model ?? modelNames[0];
  if (typeof model !== 'string') throw typeError('model', 'a string');
  if (!modelNames.includes(model)) throw new ApiError(ErrorCode.INVALID_MODEL, `Only ${modelNames.join('&&')} allowed now, your model ${model}`);

  // Newer OpenAI clients send chat's limit as max_completion_tokens.
  const maxTokens = optInt(body, 'max_tokens') ?? optInt(body, 'max_completion_tokens') ?? (body.max_tokens === null ? null : undefined);
  if (typeof maxTokens === 'number' && maxTokens <= 0) throw new ApiError(ErrorCode.PARAM_OUT_OF_RANGE, `${maxTokens} is less than the minimum of 1 - 'max_tokens'`);
  const n = optInt(body, 'n') ?? 1;
  if (n <= 0) throw new ApiError(ErrorCode.PARAM_OUT_OF_RANGE, `${n} is less than the minimum of 1 - 'n'`);
  if (n > 1) throw new ApiError(ErrorCode.PARAM_OUT_OF_RANGE, `${n} is greater than the maximum of 1 - 'n' (this server generates one sequence per request; send n requests with different seeds)`);
  const temperature = optNumber(body, 'temperature', 0.7);
  if (temperature < 0) throw new ApiError(ErrorCode.PARAM_OUT_OF_RANGE, `${temperature} is less than the minimum of 0 - 'temperature'`);
  if (temperature > 2) throw new ApiError(ErrorCode.PARAM_OUT_OF_RANGE, `${temperature} is greater than the maximum of 2 - 'temperature'`);
  const topP = optNumber(body, 'top_p', 1.0);
  if (topP < 0) throw new ApiError(ErrorCode.PARAM_OUT_OF_RANGE, `${topP} is less than the minimum of 0 - 'top_p'`);
  if (topP > 1) throw new ApiError(ErrorCode.PARAM_OUT_OF_RANGE, `${topP} is greater than the maximum of 1 - 'top_p'`);
  const stop = parseStop(body);
  const stream = optBool(body, 'stream', false);
  let includeUsage = false;
  const so = body.stream_options;
  if (so !== undefined && so !== null) {
    if (typeof so !== 'object' || Array.isArray(so)) throw typeError('stream_options', 'an object');
    includeUsage = optBool(so as Json, 'include_usage', false);
  }
  const seedIn = optInt(body, 'seed');
  const seed = typeof seedIn === 'number' ? seedIn >>> 0 : randomBytes(4).readUInt32LE(0);
  for (const f of ['presence_penalty', 'frequency_penalty']) optNumber(body, f, 0); // type-checked, ignored (as FastChat)
  const repetitionPenalty = optNumber(body, 'repetition_penalty', 1.0);
  if (!(repetitionPenalty > 0)) throw new ApiError(ErrorCode.PARAM_OUT_OF_RANGE, `${repetitionPenalty} is less than or equal to the minimum of 0 - 'repetition_penalty'`);
  const lp = body.logprobs;
  if (lp !== undefined && lp !== null && lp !== false) throw new ApiError(ErrorCode.PARAM_OUT_OF_RANGE, `logprobs is not supported by this server - 'logprobs'`);
  const bestOf = optInt(body, 'best_of');
  if (typeof bestOf === 'number' && bestOf !== 1) throw new ApiError(ErrorCode.PARAM_OUT_OF_RANGE, `${bestOf} is not supported, only 1 - 'best_of'`);
  for (const f of ['tools', 'functions', 'tool_choice', 'function_call']) {
    if (body[f] !== undefined && body[f] !== null) throw new ApiError(ErrorCode.PARAM_OUT_OF_RANGE, `'${f}' is not supported by this server`);
  }
  return { model, temperature, topP, maxTokens, stop, stream, includeUsage, seed, repetitionPenalty };
}

/** Completion prompts as texts: a string, strings, or token ids of the model's vocabulary. */
function parsePrompts(v: unknown, gen: TextGenerator): string[] {
  const decode = (ids: unknown[]): string => {
    if (!ids.every((x) => typeof x === 'number' && Number.isInteger(x))) throw typeError('prompt', 'a string, a list of strings, or token ids');
    try {
      return gen.tokenizer.decode(ids as number[]);
    } catch (e) {
      throw new ApiError(ErrorCode.PARAM_OUT_OF_RANGE, `${(e as Error).message} - 'prompt'`);
    }
  };
  if (v === undefined || v === null) throw typeError('prompt', 'given');
  if (typeof v === 'string') return [v];
  if (!Array.isArray(v) || v.length === 0) throw typeError('prompt', 'a string, a list of strings, or token ids');
  if (v.every((x) => typeof x === 'string')) return v as string[];
  if (typeof v[0] === 'number') return [decode(v)];
  if (v.every((x) => Array.isArray(x))) return v.map((x) => decode(x as unknown[]));
  throw typeError('prompt', 'a string, a list of strings, or token ids');
}

/** Prompt tokens as the worker counts them (BOS included). */
function countTokens(gen: TextGenerator, prompt: string): number {
  return gen.tokenizer.encode(prompt, { bos: true }).length;
}

/** FastChat's `check_length`, with `max_tokens: null` resolved to the rest of the context. */
function resolveMaxTokens(gen: TextGenerator, promptTokens: number, maxTokens: number | null): number {
  const ctx = gen.contextLength;
  const m = maxTokens ?? Math.max(1, ctx - promptTokens - 1);
  if (promptTokens + m > ctx) {
    throw new ApiError(
      ErrorCode.CONTEXT_OVERFLOW,
      `This model's maximum context length is ${ctx} tokens. However, you requested ${m + promptTokens} tokens (${promptTokens} in the messages, ${m} in the completion). Please reduce the length of the messages or completion.`,
    );
  }
  return m;
}

// ---------------------------------------------------------------------------------------------
// Chat messages -> the character prompt

export interface ChatPrompt {
  prompt: string;
  shortName: string;
}

function messageText(m: Json, i: number): string {
  const c = m.content;
  if (typeof c === 'string') return c;
  if (Array.isArray(c)) {
    return c
      .map((p) => {
        if (p && typeof p === 'object' && (p as Json).type === 'text' && typeof (p as Json).text === 'string') return (p as Json).text as string;
        throw new ApiError(ErrorCode.PARAM_OUT_OF_RANGE, `messages[${i}].content: only text parts are supported`);
      })
      .join('');
  }
  throw typeError(`messages[${i}].content`, 'a string or a list of text parts');
}

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

/** The short name behind "I want you to act like <full name>." in a meta prompt, if any. */
export function characterFromMetaPrompt(header: string): string | undefined {
  const m = /I want you to act like (.+?)\. I want you to/.exec(header) ?? /I want you to act like ([^\n.]+)\./.exec(header);
  if (!m) return undefined;
  const full = m[1].trim();
  return Object.entries(KNOWN_CHARACTERS).find(([, f]) => f === full)?.[0] ?? full;
}

/**
 * Builds the character prompt of a chat request (see the file header). `messages` may also be a
 * bare string (FastChat accepts one), taken as a single user message.
 */
export function buildChatCompletionPrompt(
  messagesIn: unknown,
  characterIn: unknown,
  defaults: { character?: CharacterSpec; userName?: string } = {},
): ChatPrompt {
  const requested = parseCharacter(characterIn, 'character');
  const messages: Json[] = typeof messagesIn === 'string' ? [{ role: 'user', content: messagesIn }] : (messagesIn as Json[]);
  if (!Array.isArray(messages)) throw typeError('messages', 'a list of {role, content}');
  let system: string | undefined;
  const turns: { role: string; who: 'user' | 'assistant'; content: string }[] = [];
  messages.forEach((m, i) => {
    if (!m || typeof m !== 'object' || Array.isArray(m)) throw typeError(`messages[${i}]`, 'an object {role, content}');
    const role = m.role;
    if (role === 'system' || role === 'developer') {
      if (i !== 0) throw new ApiError(ErrorCode.PARAM_OUT_OF_RANGE, `messages[${i}]: the system message must be the first message, and there can be only one (it is the prompt's header)`);
      system = messageText(m, i);
    } else if (role === 'user' || role === 'assistant') {
      let speaker = '';
      if (role === 'user') {
        if (m.name !== undefined && m.name !== null && typeof m.name !== 'string') throw typeError(`messages[${i}].name`, 'a string');
        speaker = (typeof m.name === 'string' && m.name.trim()) || defaults.userName || DEFAULT_USER_NAME;
      }
      turns.push({ role: speaker, who: role, content: messageText(m, i) });
    } else {
      throw new ApiError(ErrorCode.PARAM_OUT_OF_RANGE, `messages[${i}]: unknown role ${JSON.stringify(role)} (use system, user or assistant)`);
    }
  });

  const fallback = requested ?? defaults.character;
  let header: string;
  let shortName: string | undefined;
  if (system !== undefined) {
    const trimmed = system.replace(/\s+$/, '');
    header = trimmed === '' ? '' : trimmed + '\n\n';
    shortName = requested?.name ?? characterFromMetaPrompt(system) ?? defaults.character?.name;
    if (!shortName) {
      throw new ApiError(
        ErrorCode.PARAM_OUT_OF_RANGE,
        `cannot tell the character's name from the system message (no "I want you to act like <name>."): give the 'character' field {name} or start the server with --character`,
      );
    }
  } else {
    if (!fallback) {
      throw new ApiError(
        ErrorCode.PARAM_OUT_OF_RANGE,
        `a chat needs the character's prompt header: a system message with the meta prompt ("I want you to act like ...", spec §2.2), or the 'character' field {name, full_name, location, status}`,
      );
    }
    shortName = fallback.name;
    header = fillMetaPrompt({
      character: fallback.full_name ?? fullNameOf(fallback.name),
      loc_time: fallback.location ?? DEFAULT_LOCATION,
      status: fallback.status ?? defaultStatus(fallback.name),
    });
  }
  const short = shortName;
  const history = turns.map((t) => ({ role: t.who === 'user' ? t.role : short, action: '(speaking)', content: t.content }));
  return { prompt: chatPromptFromHeader(header, shortName, history), shortName };
}

// ---------------------------------------------------------------------------------------------
// The server

/** A FIFO of jobs run one at a time. */
class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(job: () => Promise<T>): Promise<T> {
    const p = this.tail.then(job);
    this.tail = p.catch(() => undefined);
    return p;
  }
  idle(): Promise<unknown> {
    return this.tail;
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        // Answer now and discard the rest of the upload (destroying the socket would lose the answer).
        req.removeAllListeners('data');
        req.resume();
        reject(new ApiError(ErrorCode.PARAM_OUT_OF_RANGE, `request body over ${MAX_BODY_BYTES} bytes`, 413));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

/**
 * FastChat's error object, plus the same under `error` in OpenAI's shape, so the openai clients
 * (which read `body.error`) report the message instead of "400 status code (no body)".
 */
function errorBody(e: ApiError): Json {
  const type = e.status >= 500 ? 'server_error' : 'invalid_request_error';
  return { object: 'error', message: e.message, code: e.code, error: { message: e.message, type, param: null, code: e.code } };
}

/** One HTTP exchange's view of its client: gone or not, SSE writing. */
class Exchange {
  gone = false;
  constructor(readonly res: ServerResponse) {
    res.on('close', () => {
      if (!res.writableFinished) this.gone = true;
    });
  }
  startEvents(): void {
    this.res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
    this.res.flushHeaders();
  }
  event(data: unknown): void {
    if (this.gone) throw new ClientGone();
    this.res.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
  }
  check(): void {
    if (this.gone) throw new ClientGone();
  }
}

interface Job {
  prompt: string;
  maxTokens: number;
}

export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const gen = opts.generator;
  const modelNames = Array.isArray(opts.modelName) ? [...opts.modelName] : [opts.modelName];
  if (modelNames.length === 0 || modelNames.some((n) => !n)) throw new Error('startServer: modelName must be non-empty');
  const created = Math.floor(Date.now() / 1000);
  const queue = new SerialQueue();
  const log = opts.log ?? (() => {});

  const modelCard = (id: string) => ({
    id,
    object: 'model',
    created,
    owned_by: 'wgpu-char',
    root: id,
    parent: null,
    permission: [
      {
        id: `modelperm-${randomUUID().replaceAll('-', '')}`,
        object: 'model_permission',
        created,
        allow_create_engine: false,
        allow_sampling: true,
        allow_logprobs: false,
        allow_search_indices: true,
        allow_view: true,
        allow_fine_tuning: false,
        organization: '*',
        group: null,
        is_blocking: false,
      },
    ],
  });

  /** Runs one generation on the queue; `onText` gets the final text pieces. */
  const run = (ex: Exchange, job: Job, s: Sampling, stop: string[], stopOnSpeakerTag: boolean, onText?: (t: string) => void) =>
    gen.generate(job.prompt, {
      maxNewTokens: job.maxTokens,
      temperature: s.temperature,
      topP: s.topP,
      seed: s.seed,
      repetitionPenalty: s.repetitionPenalty,
      stop,
      stopOnSpeakerTag,
      onText: (t) => {
        ex.check();
        onText?.(t);
      },
    });

  const usageOf = (rs: GenerateResult[]) => {
    const prompt_tokens = rs.reduce((a, r) => a + r.promptTokens, 0);
    const completion_tokens = rs.reduce((a, r) => a + r.newTokens, 0);
    return { prompt_tokens, completion_tokens, total_tokens: prompt_tokens + completion_tokens };
  };

  async function completions(body: Json, ex: Exchange): Promise<string> {
    const s = parseSampling(body, modelNames);
    const prompts = parsePrompts(body.prompt, gen);
    const echo = optBool(body, 'echo', false);
    const jobs: Job[] = prompts.map((prompt) => ({ prompt, maxTokens: resolveMaxTokens(gen, countTokens(gen, prompt), s.maxTokens === undefined ? 16 : s.maxTokens) }));
    const id = `cmpl-${randomUUID().replaceAll('-', '')}`;
    const base = { id, object: 'text_completion', created: Math.floor(Date.now() / 1000), model: s.model };
    return queue.run(async () => {
      ex.check();
      const results: GenerateResult[] = [];
      if (s.stream) {
        ex.startEvents();
        for (const [index, job] of jobs.entries()) {
          const piece = (text: string) => ex.event({ ...base, choices: [{ index, text, logprobs: null, finish_reason: null }] });
          if (echo) piece(job.prompt);
          const r = await run(ex, job, s, s.stop, false, piece);
          results.push(r);
          ex.event({ ...base, choices: [{ index, text: '', logprobs: null, finish_reason: r.finishReason }] });
        }
        if (s.includeUsage) ex.event({ ...base, choices: [], usage: usageOf(results) });
        ex.event('[DONE]');
        ex.res.end();
      } else {
        const choices = [];
        for (const [index, job] of jobs.entries()) {
          const r = await run(ex, job, s, s.stop, false);
          results.push(r);
          choices.push({ index, text: (echo ? job.prompt : '') + r.text, logprobs: null, finish_reason: r.finishReason });
        }
        sendJson(ex.res, 200, { ...base, choices, usage: usageOf(results) });
      }
      return `${jobs.length} prompt(s), ${usageOf(results).prompt_tokens} + ${usageOf(results).completion_tokens} tokens`;
    });
  }

  async function chat(body: Json, ex: Exchange): Promise<string> {
    const s = parseSampling(body, modelNames);
    if (body.messages === undefined || body.messages === null) throw typeError('messages', 'given');
    const { prompt, shortName } = buildChatCompletionPrompt(body.messages, body.character, { character: opts.character, userName: opts.userName });
    const job: Job = { prompt, maxTokens: resolveMaxTokens(gen, countTokens(gen, prompt), s.maxTokens ?? null) };
    const stop = [EOT, ...s.stop.filter((x) => x !== EOT)];
    const id = `chatcmpl-${randomUUID().replaceAll('-', '')}`;
    const base = { id, object: 'chat.completion', created: Math.floor(Date.now() / 1000), model: s.model };
    const chunk = { ...base, object: 'chat.completion.chunk' };
    return queue.run(async () => {
      ex.check();
      const reply = new ReplyText();
      let r: GenerateResult;
      if (s.stream) {
        ex.startEvents();
        ex.event({ ...chunk, choices: [{ index: 0, delta: { role: 'assistant' }, logprobs: null, finish_reason: null }] });
        const piece = (t: string) => {
          if (t) ex.event({ ...chunk, choices: [{ index: 0, delta: { content: t }, logprobs: null, finish_reason: null }] });
        };
        r = await run(ex, job, s, stop, true, (t) => piece(reply.push(t)));
        piece(reply.flush());
        ex.event({ ...chunk, choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: r.finishReason }] });
        if (s.includeUsage) ex.event({ ...chunk, choices: [], usage: usageOf([r]) });
        ex.event('[DONE]');
        ex.res.end();
      } else {
        r = await run(ex, job, s, stop, true);
        const content = reply.push(r.text) + reply.flush();
        sendJson(ex.res, 200, { ...base, choices: [{ index: 0, message: { role: 'assistant', content }, logprobs: null, finish_reason: r.finishReason }], usage: usageOf([r]) });
      }
      return `${shortName}: ${r.promptTokens} + ${r.newTokens} tokens, ${r.finishReason}`;
    });
  }

  function tokenCheck(body: Json): Json {
    const list = body.prompts;
    if (!Array.isArray(list)) throw typeError('prompts', 'a list of {model, prompt, max_tokens}');
    return {
      prompts: list.map((p: Json, i) => {
        if (!p || typeof p !== 'object' || typeof p.prompt !== 'string') throw typeError(`prompts[${i}].prompt`, 'a string');
        const maxTokens = optInt(p, 'max_tokens') ?? 0;
        const tokenCount = countTokens(gen, p.prompt);
        return { fits: tokenCount + maxTokens <= gen.contextLength, tokenCount, contextLength: gen.contextLength };
      }),
    };
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<string> {
    const url = new URL(req.url ?? '/', 'http://x');
    const route = url.pathname.replace(/\/+$/, '') || '/';
    const method = req.method ?? 'GET';
    const ex = new Exchange(res);
    const routes: Record<string, string> = {
      '/v1/models': 'GET',
      '/v1/completions': 'POST',
      '/v1/chat/completions': 'POST',
      '/api/v1/token_check': 'POST',
    };
    const modelMatch = /^\/v1\/models\/(.+)$/.exec(route);
    const allowed = routes[route] ?? (modelMatch ? 'GET' : undefined);
    if (!allowed) throw new ApiError(404, `not found: ${method} ${url.pathname} (endpoints: GET /v1/models, POST /v1/completions, POST /v1/chat/completions)`, 404);
    if (method !== allowed) {
      res.setHeader('Allow', allowed);
      throw new ApiError(405, `method ${method} not allowed on ${route} (use ${allowed})`, 405);
    }
    if (route === '/v1/models') {
      sendJson(res, 200, { object: 'list', data: modelNames.map(modelCard) });
      return '';
    }
    if (modelMatch) {
      const name = decodeURIComponent(modelMatch[1]);
      if (!modelNames.includes(name)) throw new ApiError(ErrorCode.INVALID_MODEL, `The model '${name}' does not exist (served: ${modelNames.join(', ')})`, 404);
      sendJson(res, 200, modelCard(name));
      return '';
    }
    const text = await readBody(req);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (e) {
      throw new ApiError(ErrorCode.VALIDATION_TYPE_ERROR, `the request body is not valid JSON: ${(e as Error).message}`);
    }
    if (!body || typeof body !== 'object' || Array.isArray(body)) throw new ApiError(ErrorCode.VALIDATION_TYPE_ERROR, 'the request body must be a JSON object');
    if (route === '/api/v1/token_check') {
      sendJson(res, 200, tokenCheck(body as Json));
      return '';
    }
    return route === '/v1/completions' ? completions(body as Json, ex) : chat(body as Json, ex);
  }

  const server: Server = createServer((req, res) => {
    const t0 = performance.now();
    const done = (status: number | string, note = '') => log(`${req.method} ${req.url} ${status}${note ? ' ' + note : ''} ${((performance.now() - t0) / 1000).toFixed(2)}s`);
    handle(req, res).then(
      (note) => done(res.statusCode, note),
      (e: unknown) => {
        if (e instanceof ClientGone) return done('client gone');
        const err = e instanceof ApiError ? e : new ApiError(ErrorCode.INTERNAL_ERROR, `internal error: ${(e as Error)?.message ?? String(e)}`, 500);
        if (!(e instanceof ApiError)) log(`${req.method} ${req.url}: ${(e as Error)?.stack ?? String(e)}`);
        if (res.headersSent) {
          // Inside a stream: one error event the openai client raises, then the end marker.
          if (!res.writableEnded && !res.destroyed) {
            res.write(`data: ${JSON.stringify(errorBody(err))}\n\n`);
            res.end('data: [DONE]\n\n');
          }
        } else {
          sendJson(res, err.status, errorBody(err));
        }
        done(err.status, err.message);
      },
    );
  });

  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 8000, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${urlHost}:${port}/v1`,
    port,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      await queue.idle();
    },
  };
}
