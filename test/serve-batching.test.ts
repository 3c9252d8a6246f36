/**
 * `wgpu-char serve` over a ContinuousBatcher (src/gen/continuous.ts) on a CPU SlotEngine
 * (test/util/fake-slot-engine.ts) with weights/tiny's tokenizer, no GPU: requests running at once,
 * the 429 of a full queue, GET /metrics, `n` choices and logprobs in OpenAI's shapes (streamed and
 * not), and the drain's cut reaching generations at their next step.
 */
import OpenAI from 'openai';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Tokenizer } from '../src/data/tokenizer.ts';
import { ContinuousBatcher } from '../src/gen/continuous.ts';
import { startServer, type RunningServer, type ServerOptions } from '../src/serve/server.ts';
import { FakeSlotEngine } from './util/fake-slot-engine.ts';
import { events, startStream, until } from './util/sse-client.ts';

const CONTEXT = 256;
let tokenizer: Tokenizer;
beforeAll(async () => {
  tokenizer = await Tokenizer.load('weights/tiny/tokenizer.model');
});

const servers: RunningServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

async function serve(opts: { slots?: number; maxQueue?: number; stepMs?: number } = {}, more: Partial<ServerOptions> = {}) {
  const engine = new FakeSlotEngine(opts.slots ?? 4, CONTEXT, 16, tokenizer.vocabSize, opts.stepMs ?? 0);
  const batcher = new ContinuousBatcher(engine, tokenizer, { maxQueue: opts.maxQueue ?? 16, maxPositions: CONTEXT, eosIds: [2] });
  const server = await startServer({ generator: batcher, modelName: 'fake', port: 0, ...more });
  servers.push(server);
  return { server, batcher, engine };
}

const JSON_HEADERS = { 'Content-Type': 'application/json' };

async function post(server: RunningServer, path: string, body: unknown) {
  const r = await fetch(server.url + path, { method: 'POST', headers: JSON_HEADERS, body: JSON.stringify(body) });
  return { status: r.status, headers: r.headers, body: (await r.json()) as any };
}

async function streamed(server: RunningServer, path: string, body: object): Promise<any[]> {
  const r = await fetch(server.url + path, { method: 'POST', headers: JSON_HEADERS, body: JSON.stringify({ ...body, stream: true }) });
  expect(r.status).toBe(200);
  return events(await r.text());
}

const COMPLETION = { model: 'fake', prompt: 'Socrates (', max_tokens: 10, temperature: 0.9, seed: 40 };
const CHAT = { model: 'fake', messages: [{ role: 'user', content: 'What is virtue?' }], character: { name: 'Socrates' }, max_tokens: 10, temperature: 0.9, seed: 40 };

describe('serve over a ContinuousBatcher', () => {
  it('n choices: index prompt_i·n + j, choice j seeded seed + j, the same streamed or not; usage counts each prompt once', async () => {
    const { server } = await serve({ slots: 3 });
    const prompts = ['Socrates (', 'Hello there'];
    const r = await post(server, '/completions', { ...COMPLETION, prompt: prompts, n: 3 });
    expect(r.status).toBe(200);
    expect(r.body.choices.map((c: any) => c.index)).toEqual([0, 1, 2, 3, 4, 5]);
    let completionTokens = 0;
    for (const [i, p] of prompts.entries()) {
      for (let j = 0; j < 3; j++) {
        const one = await post(server, '/completions', { ...COMPLETION, prompt: p, seed: COMPLETION.seed + j });
        expect(r.body.choices[i * 3 + j]).toEqual({ ...one.body.choices[0], index: i * 3 + j });
        completionTokens += one.body.usage.completion_tokens;
      }
    }
    expect(new Set(r.body.choices.map((c: any) => c.text)).size).toBe(6);
    const promptTokens = prompts.reduce((a, p) => a + tokenizer.encode(p, { bos: true }).length, 0);
    expect(r.body.usage).toEqual({ prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens });

    const evs = await streamed(server, '/completions', { ...COMPLETION, prompt: prompts, n: 3, stream_options: { include_usage: true } });
    expect(evs.at(-1)).toBe('[DONE]');
    expect(evs.at(-2).usage).toEqual(r.body.usage);
    for (const c of r.body.choices) {
      const mine = evs.filter((e) => e !== '[DONE]' && e.choices[0]?.index === c.index).map((e) => e.choices[0]);
      expect(mine.map((x) => x.text).join('')).toBe(c.text);
      expect(mine.at(-1).finish_reason).toBe(c.finish_reason);
      expect(mine.slice(0, -1).every((x) => x.finish_reason === null)).toBe(true);
    }

    // Chat: n replies, each the reply of its seed alone; streamed, each choice opens with its role.
    const chat = await post(server, '/chat/completions', { ...CHAT, n: 2 });
    expect(chat.body.choices.map((c: any) => c.index)).toEqual([0, 1]);
    const second = await post(server, '/chat/completions', { ...CHAT, seed: CHAT.seed + 1 });
    expect(chat.body.choices[1]).toEqual({ ...second.body.choices[0], index: 1 });
    const chatEvents = await streamed(server, '/chat/completions', { ...CHAT, n: 2 });
    for (const c of chat.body.choices) {
      const mine = chatEvents.filter((e) => e !== '[DONE]' && e.choices[0].index === c.index).map((e) => e.choices[0]);
      expect(mine[0].delta).toEqual({ role: 'assistant' });
      expect(mine.map((x) => x.delta.content ?? '').join('')).toBe(c.message.content);
      expect(mine.at(-1).finish_reason).toBe(c.finish_reason);
    }
  });

  it('completion logprobs in OpenAI\'s legacy shape, the same streamed; chat\'s content entries with bytes', async () => {
    const { server } = await serve();
    const r = await post(server, '/completions', { ...COMPLETION, logprobs: 2 });
    const c = r.body.choices[0];
    const lp = c.logprobs;
    const n = r.body.usage.completion_tokens;
    expect(Object.keys(lp)).toEqual(['tokens', 'token_logprobs', 'top_logprobs', 'text_offset']);
    for (const k of Object.keys(lp)) expect(lp[k]).toHaveLength(n);
    expect(lp.text_offset[0]).toBe(0);
    for (let i = 0; i < n; i++) {
      expect(lp.token_logprobs[i]).toBeLessThanOrEqual(0);
      const top = lp.top_logprobs[i];
      expect(Object.keys(top).length).toBeGreaterThanOrEqual(1);
      expect(Object.keys(top).length).toBeLessThanOrEqual(3); // 2 alternatives and the sampled token
      expect(top[lp.tokens[i]]).toBeGreaterThanOrEqual(lp.token_logprobs[i]);
      if (i > 0) expect(lp.text_offset[i]).toBeGreaterThanOrEqual(lp.text_offset[i - 1]);
    }
    // The token texts spell the text (the first token's dummy-prefix space aside).
    expect(lp.tokens.join('').replace(/^ /, '').startsWith(c.text)).toBe(true);

    const evs = (await streamed(server, '/completions', { ...COMPLETION, logprobs: 2 })).slice(0, -1);
    const joined: Record<string, unknown[]> = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
    for (const e of evs) for (const k of Object.keys(joined)) joined[k].push(...e.choices[0].logprobs[k]);
    expect(joined).toEqual(lp);
    expect(evs.map((e) => e.choices[0].text).join('')).toBe(c.text);

    const chat = await post(server, '/chat/completions', { ...CHAT, logprobs: true, top_logprobs: 3 });
    const content = chat.body.choices[0].logprobs.content;
    expect(content).toHaveLength(chat.body.usage.completion_tokens);
    for (const t of content) {
      expect(Object.keys(t)).toEqual(['token', 'logprob', 'bytes', 'top_logprobs']);
      expect(new TextDecoder().decode(Uint8Array.from(t.bytes))).toBe(t.token);
      expect(t.top_logprobs).toHaveLength(3);
      expect(t.top_logprobs[0].logprob).toBeGreaterThanOrEqual(t.logprob);
    }
    const chatEvents = (await streamed(server, '/chat/completions', { ...CHAT, logprobs: true, top_logprobs: 3 })).slice(0, -1);
    expect(chatEvents.flatMap((e) => e.choices[0].logprobs?.content ?? [])).toEqual(content);
    // Without logprobs: null, as before.
    expect((await post(server, '/chat/completions', CHAT)).body.choices[0].logprobs).toBeNull();
    expect((await post(server, '/chat/completions', { ...CHAT, logprobs: true })).body.choices[0].logprobs.content[0].top_logprobs).toEqual([]);
  });

  it('runs requests at once; a full queue is a 429 with Retry-After, before any stream opens', async () => {
    const { server, batcher } = await serve({ slots: 1, maxQueue: 1, stepMs: 10 });
    const running = await startStream(server.url + '/completions', { ...COMPLETION, max_tokens: 40 });
    const queued = post(server, '/completions', COMPLETION);
    await until(() => batcher.metrics().queued === 1);
    for (const [path, body] of [['/completions', COMPLETION], ['/completions', { ...COMPLETION, stream: true }], ['/chat/completions', CHAT]] as const) {
      const r = await fetch(server.url + path, { method: 'POST', headers: JSON_HEADERS, body: JSON.stringify(body) });
      expect(r.status, path).toBe(429);
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(await r.json()).toMatchObject({ object: 'error', code: 42903, error: { type: 'server_error', code: 42903, message: expect.stringMatching(/^the server is busy: 1 generation\(s\) are already waiting/) } });
    }
    const client = new OpenAI({ baseURL: server.url, apiKey: 'x', maxRetries: 0 });
    await expect(client.completions.create({ model: 'fake', prompt: 'Hi' })).rejects.toBeInstanceOf(OpenAI.RateLimitError);
    // More choices than slots + queue can ever hold: a 400, not a 429 to retry forever.
    const tooMany = await post(server, '/completions', { ...COMPLETION, n: 3 });
    expect(tooMany.status).toBe(400);
    expect(tooMany.body.message).toMatch(/asks for 3 generations \(n × prompts\), more than this server runs and queues at once \(2\)/);
    expect((await running.events).at(-2).choices[0].finish_reason).toBe('length');
    expect((await queued).status).toBe(200);
    expect(batcher.metrics().ended.rejected).toBeGreaterThanOrEqual(4);
  });

  it('GET /metrics: Prometheus text with the batcher\'s counters, behind the API key', async () => {
    const { server } = await serve({ slots: 2 }, { apiKeys: ['k'] });
    const auth = { Authorization: 'Bearer k' };
    const origin = server.url.replace(/\/v1$/, '');
    expect((await fetch(origin + '/metrics')).status).toBe(401);
    const a = await fetch(server.url + '/completions', { method: 'POST', headers: { ...JSON_HEADERS, ...auth }, body: JSON.stringify({ ...COMPLETION, n: 2 }) });
    const usage = ((await a.json()) as any).usage;
    const r = await fetch(origin + '/metrics', { headers: auth });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const text = await r.text();
    const value = (name: string) => {
      const line = text.split('\n').find((l) => l.startsWith(name + ' '));
      expect(line, name).toBeDefined();
      return Number(line!.slice(name.length + 1));
    };
    for (const name of ['wgpu_char_requests_running', 'wgpu_char_requests_queued', 'wgpu_char_requests_submitted_total', 'wgpu_char_requests_total', 'wgpu_char_generated_tokens_total', 'wgpu_char_prompt_tokens_total', 'wgpu_char_time_to_first_token_seconds']) {
      expect(text).toContain(`# HELP ${name} `);
      expect(text).toMatch(new RegExp(`^# TYPE ${name} (gauge|counter|histogram)$`, 'm'));
    }
    expect(value('wgpu_char_requests_running')).toBe(0);
    expect(value('wgpu_char_requests_submitted_total')).toBe(2);
    expect(value('wgpu_char_requests_total{status="length"}') + value('wgpu_char_requests_total{status="stop"}')).toBe(2);
    expect(value('wgpu_char_requests_total{status="rejected"}')).toBe(0);
    expect(value('wgpu_char_generated_tokens_total')).toBe(usage.completion_tokens);
    expect(value('wgpu_char_prompt_tokens_total')).toBe(2 * usage.prompt_tokens); // each choice's prefill
    const buckets = [...text.matchAll(/^wgpu_char_time_to_first_token_seconds_bucket\{le="([^"]+)"\} (\d+)$/gm)].map((m) => [m[1], Number(m[2])] as const);
    expect(buckets.at(-1)).toEqual(['+Inf', 2]);
    expect(buckets.every(([, n], i) => i === 0 || n >= buckets[i - 1][1])).toBe(true); // cumulative
    expect(value('wgpu_char_time_to_first_token_seconds_count')).toBe(2);
    expect(value('wgpu_char_time_to_first_token_seconds_sum')).toBeGreaterThan(0);
    expect(text.endsWith('\n')).toBe(true);
  });

  it('the drain\'s cut ends running streams with "abort" at their next step, and fails a queued answer with 503', async () => {
    const { server, batcher } = await serve({ slots: 1, maxQueue: 4, stepMs: 20 });
    const stream = await startStream(server.url + '/chat/completions', { ...CHAT, max_tokens: 100 });
    const queued = post(server, '/completions', COMPLETION);
    await until(() => batcher.metrics().queued === 1);
    const t0 = performance.now();
    expect(await server.drain(50)).toEqual({ pending: 2, aborted: 2, timedOut: true });
    expect(performance.now() - t0).toBeLessThan(2000);
    const evs = await stream.events;
    expect(evs.at(-1)).toBe('[DONE]');
    expect(evs.at(-2).choices[0]).toMatchObject({ delta: {}, finish_reason: 'abort' });
    const q = await queued;
    expect(q.status).toBe(503);
    expect(q.body.code).toBe(50301);
    expect(batcher.metrics().ended.aborted).toBe(2);
  });

  it('a client leaving mid-stream frees its slot for the next request', async () => {
    const { server, batcher } = await serve({ slots: 1, maxQueue: 2, stepMs: 5 });
    const controller = new AbortController();
    const r = await fetch(server.url + '/completions', { method: 'POST', headers: JSON_HEADERS, body: JSON.stringify({ ...COMPLETION, max_tokens: 200, stream: true }), signal: controller.signal });
    const reader = r.body!.getReader();
    await reader.read();
    controller.abort();
    await until(() => batcher.metrics().ended.cancelled === 1);
    expect(batcher.metrics().running).toBe(0);
    expect((await post(server, '/completions', COMPLETION)).status).toBe(200);
  });
});
