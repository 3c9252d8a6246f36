/**
 * `wgpu-char serve` without a GPU: the server over a fake generator (weights/tiny's tokenizer, text
 * written piece by piece on a timer) for what does not need a model's output: draining on shutdown
 * (src/serve/server.ts `drain`), API keys (src/serve/auth.ts), the request fields that are refused
 * rather than ignored (src/serve/openai.ts), and prompts too long to tokenise on the event loop
 * (src/serve/prompt-length.ts). The signals themselves: test/serve-signals.test.ts.
 */
import OpenAI from 'openai';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { Tokenizer } from '../src/data/tokenizer.ts';
import type { GenerateOptions, GenerateResult } from '../src/gen/generate.ts';
import { resolveApiKeys } from '../src/cli/serve.ts';
import { ApiKeys, apiKeysFromEnv, isLoopbackHost } from '../src/serve/auth.ts';
import { maxUnitsPerToken, promptTokensAtLeast } from '../src/serve/prompt-length.ts';
import { startServer, type RunningServer, type ServerOptions } from '../src/serve/server.ts';
import { expectUserError } from './util/user-error.ts';
import { startStream, until, sleep } from './util/sse-client.ts';


let tokenizer: Tokenizer;
beforeAll(async () => {
  tokenizer = await Tokenizer.load('weights/tiny/tokenizer.model');
});

/** A generator that writes `pieces` pieces of text, one every `pieceMs`, through onText (which may throw, as the scheduler's does). */
function fakeGenerator(opts: { contextLength?: number; pieceMs?: number; pieces?: number } = {}) {
  const { contextLength = 512, pieceMs = 5, pieces = 4 } = opts;
  const calls: { prompt: string; opts: GenerateOptions }[] = [];
  return {
    tokenizer,
    contextLength,
    calls,
    async generate(prompt: string, o: GenerateOptions): Promise<GenerateResult> {
      calls.push({ prompt, opts: o });
      const n = Math.min(pieces, o.maxNewTokens);
      let text = '';
      for (let i = 0; i < n; i++) {
        await sleep(pieceMs);
        const piece = `w${i} `;
        text += piece;
        o.onText?.(piece);
      }
      return { text, tokens: [], promptTokens: 3, newTokens: n, finishReason: 'length', prefillSeconds: 0, decodeSeconds: 0 };
    },
  };
}

const servers: RunningServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

async function serve(generator: ReturnType<typeof fakeGenerator>, more: Partial<ServerOptions> = {}): Promise<RunningServer> {
  const s = await startServer({ generator, modelName: 'fake', port: 0, ...more });
  servers.push(s);
  return s;
}

const JSON_HEADERS = { 'Content-Type': 'application/json' };

async function post(server: RunningServer, path: string, body: unknown, headers: Record<string, string> = {}) {
  const r = await fetch(server.url + path, { method: 'POST', headers: { ...JSON_HEADERS, ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  return { status: r.status, headers: r.headers, body: (await r.json()) as any };
}

const CHAT = { model: 'fake', messages: [{ role: 'user', content: 'Hi' }], character: { name: 'Beethoven' }, max_tokens: 50 };
const COMPLETION = { model: 'fake', prompt: 'Hello', max_tokens: 50 };

describe('drain (SIGTERM/SIGINT in `serve`)', () => {
  it('finishes the request in progress and the queued one, answers new ones 503 with Retry-After, then closes', async () => {
    const server = await serve(fakeGenerator({ pieceMs: 50, pieces: 10 }));
    const stream = await startStream(server.url + '/completions', COMPLETION);
    const queued = post(server, '/chat/completions', CHAT);
    await until(() => server.pendingRequests() === 2); // the second one waits for the model

    const drained = server.drain(10_000);
    const late = await fetch(server.url + '/models');
    expect(late.status).toBe(503);
    expect(Number(late.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await late.json()).toMatchObject({ error: { type: 'server_error', code: 50301 }, message: expect.stringMatching(/shutting down/) });
    expect((await fetch(server.url.replace(/\/v1$/, '/health'))).status).toBe(503); // a load balancer stops sending here

    const streamed = await stream.events;
    expect(streamed.at(-1)).toBe('[DONE]');
    expect((streamed.at(-2) as any).choices[0].finish_reason).toBe('length');
    const whole = 'w0 w1 w2 w3 w4 w5 w6 w7 w8 w9 ';
    expect((streamed as any[]).slice(0, -1).map((e) => e.choices[0].text).join('')).toBe(whole);
    const q = await queued;
    expect(q.status).toBe(200);
    expect(q.body.choices[0]).toMatchObject({ finish_reason: 'length', message: { content: whole.trim() } });

    expect(await drained).toEqual({ pending: 2, aborted: 0, timedOut: false });
    await expect(fetch(server.url + '/models')).rejects.toThrow(); // closed
  });

  it('at the drain timeout ends started streams with finish_reason "abort" and [DONE], and answers queued requests 503', async () => {
    const server = await serve(fakeGenerator({ pieceMs: 40, pieces: 1000 }));
    const chatStream = await startStream(server.url + '/chat/completions', { ...CHAT, max_tokens: 300 });
    const queuedStream = fetch(server.url + '/completions', { method: 'POST', headers: JSON_HEADERS, body: JSON.stringify({ ...COMPLETION, stream: true }) });
    const queued = post(server, '/completions', COMPLETION);
    await until(() => server.pendingRequests() === 3);
    const t0 = performance.now();
    const report = await server.drain(150);
    expect(performance.now() - t0).toBeLessThan(2000); // the cut generation stops at its next piece
    expect(report).toEqual({ pending: 3, aborted: 3, timedOut: true });

    const chat = (await chatStream.events) as any[];
    expect(chat.at(-1)).toBe('[DONE]');
    const last = chat.at(-2);
    expect(last).toMatchObject({ object: 'chat.completion.chunk', choices: [{ index: 0, delta: {}, finish_reason: 'abort' }] });
    expect(chat.slice(0, -2).every((e) => e.choices[0].finish_reason === null)).toBe(true);
    expect(chat.slice(0, -2).map((e) => e.choices[0].delta.content ?? '').join('')).toMatch(/^w0 w1/);
    // Queued (not started): a 503 in the API's error shape, stream or not.
    for (const r of [await queuedStream, await queued]) {
      expect(r.status).toBe(503);
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      const body = r instanceof Response ? await r.json() : r.body;
      expect(body).toMatchObject({ object: 'error', code: 50301, error: { type: 'server_error', code: 50301, message: expect.stringMatching(/drain time/) } });
    }
  });

  it('a completion stream cut mid-way ends its choice with "abort"; a second drain call brings the cut forward', async () => {
    const server = await serve(fakeGenerator({ pieceMs: 20, pieces: 1000 }));
    const stream = await startStream(server.url + '/completions', { ...COMPLETION, max_tokens: 400, stream_options: { include_usage: true } });
    const first = server.drain(60_000);
    await sleep(50);
    const t0 = performance.now();
    const second = server.drain(0);
    expect(second).toBe(first);
    expect(await second).toEqual({ pending: 1, aborted: 1, timedOut: true });
    expect(performance.now() - t0).toBeLessThan(2000);
    const evs = (await stream.events) as any[];
    expect(evs.at(-1)).toBe('[DONE]');
    expect(evs.at(-2)).toMatchObject({ object: 'text_completion', choices: [{ index: 0, text: '', finish_reason: 'abort' }] });
    expect(evs.some((e) => e.usage)).toBe(false); // the cut generation's counts are lost with it
  });

  it('with nothing pending, closes at once', async () => {
    const server = await serve(fakeGenerator());
    expect(await server.drain(30_000)).toEqual({ pending: 0, aborted: 0, timedOut: false });
  });
});

describe('API keys', () => {
  it('without "Authorization: Bearer <key>" every route but /health is a 401 in OpenAI\'s shape', async () => {
    const server = await serve(fakeGenerator(), { apiKeys: ['k-one', 'k-two'] });
    const origin = server.url.replace(/\/v1$/, '');
    const health = await fetch(origin + '/health');
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });

    for (const [path, headers] of [
      ['/v1/models', {}],
      ['/v1/models', { Authorization: 'Bearer wrong' }],
      ['/v1/models', { Authorization: 'k-one' }], // no scheme
      ['/v1/models', { Authorization: 'Basic k-one' }],
      ['/v1/engines', {}], // an unknown path too: the endpoint list stays private
      ['/api/v1/token_check', {}],
    ] as [string, Record<string, string>][]) {
      const r = await fetch(origin + path, { headers });
      expect(r.status, `${path} ${JSON.stringify(headers)}`).toBe(401);
      expect(r.headers.get('www-authenticate')).toMatch(/^Bearer/);
      const body = await r.json();
      expect(body.error).toEqual({ message: expect.any(String), type: 'invalid_request_error', param: null, code: 'invalid_api_key' });
      expect([40101, 40102]).toContain(body.code);
      expect(JSON.stringify(body)).not.toContain('wrong'); // the key presented is never echoed
    }
    const r = await post(server, '/completions', COMPLETION);
    expect(r.status).toBe(401);
    for (const key of ['k-one', 'k-two']) {
      expect((await fetch(server.url + '/models', { headers: { Authorization: `Bearer ${key}` } })).status).toBe(200);
      expect((await fetch(server.url + '/models', { headers: { Authorization: `bearer  ${key}` } })).status).toBe(200);
    }

    // The openai client sends its api_key so; a wrong one is its AuthenticationError.
    const good = new OpenAI({ baseURL: server.url, apiKey: 'k-two', maxRetries: 0 });
    expect((await good.completions.create({ model: 'fake', prompt: 'Hi', max_tokens: 2 })).choices[0].text).toBe('w0 w1 ');
    const bad = new OpenAI({ baseURL: server.url, apiKey: 'k-three', maxRetries: 0 });
    await expect(bad.models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
  });

  it('without keys the server is open', async () => {
    const server = await serve(fakeGenerator());
    expect((await fetch(server.url + '/models')).status).toBe(200);
  });

  it('keys: --api-key wins over WGPU_CHAR_API_KEY (comma-separated); unusable keys are one-line errors', () => {
    expect(resolveApiKeys(undefined, {})).toEqual([]);
    expect(resolveApiKeys(undefined, { WGPU_CHAR_API_KEY: '' })).toEqual([]);
    expect(resolveApiKeys(undefined, { WGPU_CHAR_API_KEY: ' a , b,,c ' })).toEqual(['a', 'b', 'c']);
    expect(resolveApiKeys(['x'], { WGPU_CHAR_API_KEY: 'a,b' })).toEqual(['x']);
    expect(apiKeysFromEnv('k')).toEqual(['k']);
    expectUserError(() => resolveApiKeys(undefined, { WGPU_CHAR_API_KEY: ' , ' }), 'WGPU_CHAR_API_KEY', /no key in it/);
    expectUserError(() => resolveApiKeys([''], {}), '--api-key', /cannot be empty/);
    expectUserError(() => resolveApiKeys(['a b'], {}), '--api-key', /whitespace/);
    expect(() => new ApiKeys([])).toThrow(/no keys/);
  });

  it('loopback hosts need no key; anything else warns', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1']) expect(isLoopbackHost(h), h).toBe(true);
    for (const h of ['0.0.0.0', '::', '192.168.1.5', 'example.com', '10.0.0.1', '::ffff:10.0.0.1']) expect(isLoopbackHost(h), h).toBe(false);
  });
});

describe('request fields are honoured or refused, never dropped', () => {
  async function expect400(server: RunningServer, path: string, body: object, message: RegExp, code = 40302) {
    const r = await post(server, path, body);
    expect(r.status, JSON.stringify(body)).toBe(400);
    expect(r.body).toMatchObject({ object: 'error', code, error: { type: 'invalid_request_error' } });
    expect(r.body.message).toMatch(message);
  }

  it('presence_penalty / frequency_penalty: 0 only (not implemented, see openai.ts), within OpenAI\'s [-2, 2]', async () => {
    const server = await serve(fakeGenerator());
    for (const path of ['/completions', '/chat/completions']) {
      const base = path === '/completions' ? COMPLETION : CHAT;
      for (const f of ['presence_penalty', 'frequency_penalty']) {
        await expect400(server, path, { ...base, [f]: 0.5 }, new RegExp(`^0.5: '${f}' is not supported by this server, only 0 \\(use 'repetition_penalty'`));
        await expect400(server, path, { ...base, [f]: 3 }, new RegExp(`^3 is greater than the maximum of 2 - '${f}'`));
        await expect400(server, path, { ...base, [f]: 'x' }, new RegExp(`'${f}' must be a number`), 40001);
        expect((await post(server, path, { ...base, [f]: 0 })).status).toBe(200);
        expect((await post(server, path, { ...base, [f]: null })).status).toBe(200);
      }
    }
  });

  it('response_format: only text', async () => {
    const server = await serve(fakeGenerator());
    expect((await post(server, '/chat/completions', { ...CHAT, response_format: { type: 'text' } })).status).toBe(200);
    await expect400(server, '/chat/completions', { ...CHAT, response_format: { type: 'json_object' } }, /response_format type "json_object" is not supported by this server, only "text"/);
    await expect400(server, '/chat/completions', { ...CHAT, response_format: { type: 'json_schema', json_schema: {} } }, /"json_schema" is not supported/);
    await expect400(server, '/chat/completions', { ...CHAT, response_format: 'json' }, /'response_format' must be an object/, 40001);
    await expect400(server, '/completions', { ...COMPLETION, response_format: { type: 'text' } }, /^Unrecognized request argument supplied: response_format/);
  });

  it('unknown fields are refused as OpenAI does; known features we lack only at their "off" value', async () => {
    const server = await serve(fakeGenerator());
    await expect400(server, '/completions', { ...COMPLETION, min_p: 0.1, bogus: 1 }, /^Unrecognized request argument supplied: min_p, bogus \(this endpoint takes: model, /);
    await expect400(server, '/chat/completions', { ...CHAT, prompt: 'Hi' }, /^Unrecognized request argument supplied: prompt/);
    await expect400(server, '/completions', { ...COMPLETION, max_completion_tokens: 5 }, /^Unrecognized request argument supplied: max_completion_tokens/);
    await expect400(server, '/completions', { ...COMPLETION, logit_bias: { 5: 100 } }, /'logit_bias' is not supported/);
    await expect400(server, '/completions', { ...COMPLETION, suffix: 'end' }, /'suffix' is not supported/);
    await expect400(server, '/completions', { ...COMPLETION, top_k: 40 }, /'top_k' is not supported by this server, only -1 or 0/);
    await expect400(server, '/completions', { ...COMPLETION, use_beam_search: true }, /'use_beam_search' is not supported/);
    await expect400(server, '/chat/completions', { ...CHAT, top_logprobs: 2 }, /^'top_logprobs' needs 'logprobs': true/);
    await expect400(server, '/chat/completions', { ...CHAT, logprobs: true, top_logprobs: 21 }, /^21 is greater than the maximum of 20 - 'top_logprobs'/);
    await expect400(server, '/completions', { ...COMPLETION, logprobs: 6 }, /^6 is greater than the maximum of 5 - 'logprobs'/);
    await expect400(server, '/completions', { ...COMPLETION, logprobs: true }, /'logprobs' must be an integer/, 40001);
    await expect400(server, '/completions', { ...COMPLETION, logprobs: 1, echo: true }, /'logprobs' with 'echo' is not supported/);
    await expect400(server, '/completions', { ...COMPLETION, n: 129 }, /^129 is greater than the maximum of 128 - 'n'/);
    await expect400(server, '/chat/completions', { ...CHAT, max_tokens: 5, max_completion_tokens: 6 }, /'max_tokens' \(5\) and 'max_completion_tokens' \(6\) disagree/);
    await expect400(server, '/completions', { ...COMPLETION, user: 5 }, /'user' must be a string/, 40001);
    // Their "off" values, and the harmless `user`, pass.
    const ok = { logit_bias: {}, suffix: '', top_k: -1, use_beam_search: false, user: 'someone', best_of: 1, logprobs: null, echo: false, stream_options: { include_usage: true } };
    expect((await post(server, '/completions', { ...COMPLETION, ...ok })).status).toBe(200);
    expect((await post(server, '/chat/completions', { ...CHAT, top_k: 0, user: 'u', max_tokens: 5, max_completion_tokens: 5, top_logprobs: null, tools: null })).status).toBe(200);
  });

  it('n over a one-at-a-time generator: the choices run one after another, seeded seed + j', async () => {
    const generator = fakeGenerator({ pieces: 2 });
    let running = 0;
    let most = 0;
    const generate = generator.generate.bind(generator);
    generator.generate = async (prompt, o) => {
      most = Math.max(most, ++running);
      try {
        return await generate(prompt, o);
      } finally {
        running--;
      }
    };
    const server = await serve(generator);
    const r = await post(server, '/completions', { ...COMPLETION, prompt: ['a', 'b'], n: 2, seed: 7 });
    expect(r.status).toBe(200);
    expect(r.body.choices.map((c: any) => c.index)).toEqual([0, 1, 2, 3]);
    expect(generator.calls.map((c) => [c.prompt, c.opts.seed])).toEqual([['a', 7], ['a', 8], ['b', 7], ['b', 8]]);
    expect(most).toBe(1);
    expect(r.body.usage).toEqual({ prompt_tokens: 2 * 3, completion_tokens: 4 * 2, total_tokens: 14 }); // each prompt counted once
    // /metrics belongs to a batching generator: here it is an unknown path.
    expect((await fetch(server.url.replace(/\/v1$/, '/metrics'))).status).toBe(404);
  });

  it('top_p 0 is accepted and reaches the generator as 0 (the sampler\'s greedy)', async () => {
    const generator = fakeGenerator();
    const server = await serve(generator);
    expect((await post(server, '/completions', { ...COMPLETION, top_p: 0, temperature: 1 })).status).toBe(200);
    expect((await post(server, '/chat/completions', { ...CHAT, top_p: 0 })).status).toBe(200);
    expect(generator.calls.map((c) => c.opts.topP)).toEqual([0, 0]);
  });
});

describe('long prompts do not hold the server', () => {
  it('the length bound: no token of weights/tiny covers more than 16 characters', () => {
    expect(maxUnitsPerToken(tokenizer)).toBe(16);
    // The bound holds for text that packs the most characters into each token.
    for (const text of ['experimentation '.repeat(200), ' '.repeat(5000), 'a'.repeat(3000), '🙂'.repeat(500), 'Socrates speaks of virtue.\n'.repeat(100)]) {
      expect(tokenizer.encode(text, { bos: true }).length, JSON.stringify(text.slice(0, 20))).toBeGreaterThanOrEqual(promptTokensAtLeast(tokenizer, text));
    }
  });

  it('a 7 MB prompt is refused with the context-length 400 without being tokenised', async () => {
    const server = await serve(fakeGenerator());
    const encode = vi.spyOn(tokenizer, 'encode');
    const encodeAsync = vi.spyOn(tokenizer, 'encodeAsync');
    try {
      const huge = 'Socrates speaks of virtue. '.repeat(260_000); // 7.0 MB; tokenising it took 4-19 s
      const t0 = performance.now();
      const r = await post(server, '/completions', { ...COMPLETION, prompt: huge, max_tokens: 4 });
      const ms = performance.now() - t0;
      expect(r.status).toBe(400);
      expect(r.body).toMatchObject({ code: 40303, error: { code: 40303 } });
      expect(r.body.message).toMatch(/^This model's maximum context length is 512 tokens\. However, you requested at least 438755 tokens \(at least 438751 in the messages: 7020000 characters, and no token of this model covers more than 16; 4 in the completion\)/);
      const chat = await post(server, '/chat/completions', { ...CHAT, messages: [{ role: 'user', content: huge }] });
      expect(chat.status).toBe(400);
      expect(chat.body.code).toBe(40303);
      expect(encode).not.toHaveBeenCalled();
      expect(encodeAsync).not.toHaveBeenCalled();
      // The spies above are the proof; the time is a sanity check (before: 4-19 s on 2 busy cores).
      expect(ms).toBeLessThan(5000); // upload and JSON.parse only
    } finally {
      encode.mockRestore();
      encodeAsync.mockRestore();
    }
  });

  it('token-id prompts longer than the context are refused before decoding', async () => {
    const server = await serve(fakeGenerator());
    const decode = vi.spyOn(tokenizer, 'decode');
    try {
      const r = await post(server, '/completions', { ...COMPLETION, prompt: new Array(600).fill(5), max_tokens: 4 });
      expect(r.status).toBe(400);
      expect(r.body.message).toMatch(/maximum context length is 512 tokens\. However, you requested at least 604 tokens \(600 token ids in the prompt, 4 in the completion\)/);
      expect(decode).not.toHaveBeenCalled();
    } finally {
      decode.mockRestore();
    }
  });

  it('GET /v1/models answers while a long allowed prompt is tokenised', async () => {
    // A context so large that nothing is refused up front: the prompt is tokenised, in chunks.
    const server = await serve(fakeGenerator({ contextLength: 50_000_000 }));
    const long = 'Socrates speaks of virtue, and of the soul.\n'.repeat(120_000); // 5.3 MB, one line each
    const t0 = performance.now();
    let completionMs = 0;
    const completion = post(server, '/completions', { ...COMPLETION, prompt: long, max_tokens: 2 }).then((r) => {
      completionMs = performance.now() - t0;
      return r;
    });
    await sleep(300); // uploaded and parsed by now: tokenising
    const latencies: number[] = [];
    for (let i = 0; i < 5 && completionMs === 0; i++) {
      const t = performance.now();
      expect((await fetch(server.url + '/models')).status).toBe(200);
      latencies.push(performance.now() - t);
      await sleep(50);
    }
    expect((await completion).status).toBe(200);
    expect(latencies.length).toBeGreaterThan(0); // they were answered before the completion
    // Each answer waits for one chunk (32 K characters) at most, not for the whole prompt.
    expect(Math.max(...latencies)).toBeLessThan(Math.max(250, completionMs / 5));
  });

  it('Tokenizer.encodeAsync gives encode\'s ids', async () => {
    const text = 'Socrates speaks of virtue.\n'.repeat(5000) + 'no newline at the end 🙂';
    expect(await tokenizer.encodeAsync(text, { bos: true, eos: true })).toEqual(tokenizer.encode(text, { bos: true, eos: true }));
    expect(await tokenizer.encodeAsync(text, { chunkChars: 100 })).toEqual(tokenizer.encode(text, { chunkChars: Infinity }));
    expect(await tokenizer.encodeAsync('')).toEqual([]);
  });
});
