/**
 * `wgpu-char serve` (src/serve/): the OpenAI-compatible server, in-process on an ephemeral
 * port over weights/tiny, called with the real `openai` client. The tiny model writes gibberish,
 * so the tests compare the server against itself (same seed, streamed vs not, with vs without a
 * stop) and check the prompt it built through usage.prompt_tokens.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gpu } from './util/gpu.ts';
import { loadLlamaModel } from '../src/formats/hf-checkpoint.ts';
import { Tokenizer } from '../src/data/tokenizer.ts';
import { Generator } from '../src/gen/generate.ts';
import { EOT, fillMetaPrompt } from '../src/data/prompted.ts';
import { characterFromMetaPrompt, ReplyText } from '../src/gen/chat-prompt.ts';
import { buildChatCompletionPrompt } from '../src/serve/openai.ts';
import { startServer, type RunningServer } from '../src/serve/server.ts';

const SOCRATES_HEADER = fillMetaPrompt({ character: 'Socrates', loc_time: 'Coffee Shop - Afternoon', status: 'Socrates is casually chatting with a man from the 21st century.' });

describe('chat messages -> character prompt', () => {
  it('builds the paper\'s LocalCharacter prompt from a character field', () => {
    const { prompt, shortName } = buildChatCompletionPrompt(
      [
        { role: 'user', content: 'What do you think of your father?' },
        { role: 'assistant', content: 'He was harsh.' },
        { role: 'user', content: [{ type: 'text', text: 'And your ' }, { type: 'text', text: 'music?' }] },
      ],
      { name: 'Beethoven' },
    );
    expect(shortName).toBe('Beethoven');
    expect(prompt).toBe(
      fillMetaPrompt({ character: 'Ludwig van Beethoven', loc_time: 'Coffee Shop - Afternoon', status: 'Beethoven is casually chatting with a man from the 21st century.' }) +
        `Man (speaking): What do you think of your father?${EOT}\nBeethoven (speaking): He was harsh.${EOT}\nMan (speaking): And your music?${EOT}\nBeethoven (`,
    );
  });

  it('takes a system message as the header (trailing whitespace -> "\\n\\n") and finds the short name in it', () => {
    const stripped = SOCRATES_HEADER.trimEnd();
    for (const system of [stripped, SOCRATES_HEADER, stripped + ' \n']) {
      const r = buildChatCompletionPrompt([{ role: 'system', content: system }, { role: 'user', content: 'Hi', name: 'Plato' }], undefined);
      expect(r.prompt).toBe(`${SOCRATES_HEADER}Plato (speaking): Hi${EOT}\nSocrates (`);
    }
    expect(characterFromMetaPrompt(fillMetaPrompt({ character: 'Ludwig van Beethoven', loc_time: 'x', status: 'y' }))).toBe('Beethoven');
    // A system message without a meta prompt needs a name from elsewhere.
    expect(buildChatCompletionPrompt([{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }], { name: 'Newton' }).prompt).toBe(`Be brief.\n\nMan (speaking): Hi${EOT}\nNewton (`);
    expect(() => buildChatCompletionPrompt([{ role: 'system', content: 'Be brief.' }], undefined)).toThrow(/character's name/);
  });

  it('keeps the last 8 turns; rejects a missing header, a late system message and unknown roles', () => {
    const msgs = Array.from({ length: 10 }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: `t${i}` }));
    const { prompt } = buildChatCompletionPrompt(msgs, undefined, { character: { name: 'Caesar' } });
    expect(prompt).not.toContain('t1<');
    expect(prompt).toContain(`Man (speaking): t2${EOT}\n`);
    expect(prompt.endsWith(`Caesar (speaking): t9${EOT}\nCaesar (`)).toBe(true);
    expect(() => buildChatCompletionPrompt([{ role: 'user', content: 'Hi' }], undefined)).toThrow(/system message with the meta prompt.*'character' field/);
    expect(() => buildChatCompletionPrompt([{ role: 'user', content: 'Hi' }, { role: 'system', content: 'x' }], { name: 'A' })).toThrow(/first message/);
    expect(() => buildChatCompletionPrompt([{ role: 'tool', content: 'Hi' }], { name: 'A' })).toThrow(/unknown role/);
  });

  it('ReplyText drops the action head and outer whitespace, the same streamed or whole', () => {
    const cases: [string, string][] = [
      ['speaking): I was born in Bonn. \n', 'I was born in Bonn.'],
      ['thinking):   He asks  a lot.', 'He asks  a lot.'],
      ['no head at all, just a long reply with text', 'no head at all, just a long reply with text'],
      ['short', 'short'],
      ['', ''],
    ];
    for (const [completion, content] of cases) {
      const whole = new ReplyText();
      expect(whole.push(completion) + whole.flush()).toBe(content);
      const streamed = new ReplyText();
      const parts = [...completion].map((ch) => streamed.push(ch));
      expect(parts.join('') + streamed.flush()).toBe(content);
    }
  });
});

describe.skipIf(!gpu)('serve over weights/tiny with the openai client', () => {
  const CONTEXT = 256;
  let server: RunningServer;
  let client: OpenAI;
  let tokenizer: Tokenizer;
  let generator: Generator;
  const logs: string[] = [];

  beforeAll(async () => {
    tokenizer = await Tokenizer.load('weights/tiny/tokenizer.model');
    const model = await loadLlamaModel(gpu!, 'weights/tiny', 'f32');
    generator = await Generator.create(model, tokenizer, { contextLength: CONTEXT });
    server = await startServer({ generator, modelName: ['tiny', 'Socrates-end'], port: 0, log: (l) => logs.push(l) });
    client = new OpenAI({ baseURL: server.url, apiKey: 'EMPTY', maxRetries: 0 });
  });
  afterAll(async () => {
    await server?.close();
    generator?.destroy();
  });

  const PROMPT = `${SOCRATES_HEADER}Man (speaking): What is virtue?${EOT}\nSocrates (`;
  const tokens = (s: string) => tokenizer.encode(s, { bos: true }).length;

  /** POSTs raw JSON (or text) and returns the status and parsed body. */
  async function post(path: string, body: unknown): Promise<{ status: number; body: any }> {
    const r = await fetch(server.url + path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });
    return { status: r.status, body: await r.json() };
  }

  it('lists the served models', async () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/);
    const list = await client.models.list();
    expect(list.data.map((m) => m.id)).toEqual(['tiny', 'Socrates-end']);
    expect(list.data[0]).toMatchObject({ object: 'model', root: 'tiny' });
    expect((await client.models.retrieve('Socrates-end')).id).toBe('Socrates-end');
  });

  it('a seeded completion is deterministic, also when two requests arrive at once (one at a time on the GPU)', async () => {
    const req = { model: 'tiny', prompt: PROMPT, max_tokens: 8, temperature: 0.9, top_p: 0.95, seed: 11 };
    const a = await client.completions.create(req);
    expect(a.object).toBe('text_completion');
    expect(a.id).toMatch(/^cmpl-/);
    expect(a.choices).toHaveLength(1);
    expect(a.choices[0].text.length).toBeGreaterThan(0);
    expect(['stop', 'length']).toContain(a.choices[0].finish_reason);
    expect(a.usage!.prompt_tokens).toBe(tokens(PROMPT));
    expect(a.usage!.completion_tokens).toBeLessThanOrEqual(8);
    expect(a.usage!.total_tokens).toBe(a.usage!.prompt_tokens + a.usage!.completion_tokens);
    const [b, c] = await Promise.all([client.completions.create(req), client.completions.create(req)]);
    expect(b.choices[0].text).toBe(a.choices[0].text);
    expect(c.choices[0].text).toBe(a.choices[0].text);
    // A list of prompts gives one choice per prompt, in order.
    const two = await client.completions.create({ ...req, prompt: [PROMPT, 'Hello'] });
    expect(two.choices.map((x) => x.index)).toEqual([0, 1]);
    expect(two.choices[0].text).toBe(a.choices[0].text);
  });

  it('cuts the text before a stop string, with finish_reason "stop"', async () => {
    const req = { model: 'tiny', prompt: PROMPT, max_tokens: 8, temperature: 0 }; // greedy below 1e-5
    const full = (await client.completions.create(req)).choices[0];
    expect(full.finish_reason).toBe('length');
    expect(full.text.length).toBeGreaterThan(4);
    const k = Math.floor(full.text.length / 2);
    const stop = full.text.slice(k, k + 3);
    const cut = full.text.slice(0, full.text.indexOf(stop));
    for (const s of [stop, ['never-there', stop]]) {
      const r = (await client.completions.create({ ...req, stop: s })).choices[0];
      expect(r.text).toBe(cut);
      expect(r.finish_reason).toBe('stop');
    }
  });

  it('streamed chunks concatenate to the non-streamed text for the same seed', async () => {
    const req = { model: 'tiny', prompt: PROMPT, max_tokens: 8, temperature: 1.0, seed: 5 };
    const whole = (await client.completions.create(req)).choices[0];
    const stream = await client.completions.create({ ...req, stream: true, stream_options: { include_usage: true } });
    let text = '';
    const finish: (string | null)[] = [];
    let usage;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      for (const c of chunk.choices) {
        text += c.text;
        finish.push(c.finish_reason);
      }
    }
    expect(text).toBe(whole.text);
    expect(finish.at(-1)).toBe(whole.finish_reason);
    expect(finish.slice(0, -1).every((f) => f === null)).toBe(true);
    expect(usage?.prompt_tokens).toBe(tokens(PROMPT));
  });

  it('chat completions build the character prompt; streaming gives the same content', async () => {
    const messages = [
      { role: 'system' as const, content: SOCRATES_HEADER.trimEnd() },
      { role: 'user' as const, content: 'What is virtue?' },
    ];
    const req = { model: 'Socrates-end', messages, max_tokens: 8, temperature: 0.8, seed: 21 };
    const r = await client.chat.completions.create(req);
    expect(r.object).toBe('chat.completion');
    expect(r.choices[0].message.role).toBe('assistant');
    expect(typeof r.choices[0].message.content).toBe('string');
    expect(r.choices[0].message.content).not.toMatch(/^\s*\(?speaking\)?:/);
    expect(r.usage!.prompt_tokens).toBe(tokens(PROMPT)); // exactly the LocalCharacter prompt
    const stream = await client.chat.completions.create({ ...req, stream: true });
    let content = '';
    let role;
    let finish;
    for await (const chunk of stream) {
      const c = chunk.choices[0];
      role ??= c.delta.role;
      content += c.delta.content ?? '';
      finish = c.finish_reason ?? finish;
    }
    expect(role).toBe('assistant');
    expect(content).toBe(r.choices[0].message.content);
    expect(finish).toBe(r.choices[0].finish_reason);
    // The `character` extension field instead of a system message: the same prompt.
    const viaField = await client.chat.completions.create({
      model: 'tiny',
      messages: [{ role: 'user', content: 'What is virtue?' }],
      max_tokens: 2,
      character: { name: 'Socrates' },
    } as OpenAI.ChatCompletionCreateParamsNonStreaming);
    expect(viaField.usage!.prompt_tokens).toBe(tokens(PROMPT));
  });

  it('top_p 0 keeps only the most likely token: greedy, whatever the temperature and seed', async () => {
    const req = { model: 'tiny', prompt: PROMPT, max_tokens: 12 };
    const greedy = (await client.completions.create({ ...req, temperature: 0 })).choices[0].text;
    for (const [temperature, seed] of [[1, 1], [1.5, 2], [0.7, 3]]) {
      const r = await client.completions.create({ ...req, temperature, top_p: 0, seed } as OpenAI.CompletionCreateParamsNonStreaming);
      expect(r.choices[0].text, `temperature ${temperature}, seed ${seed}`).toBe(greedy);
    }
  });

  it('echo prepends the prompt; a client that leaves mid-stream stops its generation', async () => {
    const e = await client.completions.create({ model: 'tiny', prompt: 'Hello', max_tokens: 3, temperature: 0, echo: true });
    expect(e.choices[0].text.startsWith('Hello')).toBe(true);

    const stream = await client.completions.create({ model: 'tiny', prompt: 'Hello', max_tokens: 200, temperature: 0, stream: true });
    for await (const chunk of stream) {
      if (chunk.choices[0]?.text) break; // leaving the loop aborts the request
    }
    const after = await client.completions.create({ model: 'tiny', prompt: 'Hello', max_tokens: 2, temperature: 0 });
    expect(after.choices).toHaveLength(1);
    expect(logs.some((l) => /^POST \/v1\/completions client gone/.test(l))).toBe(true);
  });

  it('rejects bad requests with 400 and FastChat\'s error object', async () => {
    const bad = async (body: Record<string, unknown>, path = '/completions') => {
      // Each endpoint refuses the other's prompt field as unknown.
      const base = path === '/completions' ? { model: 'tiny', prompt: 'Hi', max_tokens: 4 } : { model: 'tiny', max_tokens: 4 };
      const r = await post(path, { ...base, ...body });
      expect(r.status).toBe(400);
      expect(r.body).toMatchObject({ object: 'error', message: expect.any(String), code: expect.any(Number) });
      return r.body as { message: string; code: number };
    };
    expect(await bad({ n: 129 })).toMatchObject({ code: 40302, message: expect.stringMatching(/^129 is greater than the maximum of 128 - 'n'/) });
    expect(await bad({ temperature: 3 })).toMatchObject({ code: 40302, message: expect.stringMatching(/^3 is greater than the maximum of 2 - 'temperature'/) });
    expect(await bad({ top_p: -0.5 })).toMatchObject({ code: 40302 });
    expect(await bad({ max_tokens: 0 })).toMatchObject({ code: 40302 });
    const long = 'Socrates speaks of virtue. '.repeat(60);
    const overflow = await bad({ prompt: long, max_tokens: 8 });
    expect(overflow.code).toBe(40303);
    expect(overflow.message).toContain(`maximum context length is ${CONTEXT} tokens. However, you requested ${tokens(long) + 8} tokens (${tokens(long)} in the messages, 8 in the completion)`);
    expect(await bad({ model: 'gpt-3.5-turbo' })).toMatchObject({ code: 40301, message: 'Only tiny&&Socrates-end allowed now, your model gpt-3.5-turbo' });
    expect(await bad({ temperature: 'hot' })).toMatchObject({ code: 40001 });
    expect((await bad({ messages: [{ role: 'user', content: 'Hi' }] }, '/chat/completions')).message).toMatch(/system message with the meta prompt/);

    // Through the openai client: a BadRequestError carrying the message.
    await expect(client.completions.create({ model: 'tiny', prompt: 'Hi', n: 129 })).rejects.toMatchObject({ status: 400, code: 40302 });
    await expect(client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'Hi' }], temperature: 3 })).rejects.toThrow(/400 3 is greater than the maximum of 2/);

    const malformed = await post('/completions', '{"model": "tiny", "prompt": ');
    expect(malformed.status).toBe(400);
    expect(malformed.body).toMatchObject({ object: 'error', code: 40001 });
    const missing = await fetch(server.url + '/engines');
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ object: 'error' });
    expect((await fetch(server.url + '/completions')).status).toBe(405);
    expect(logs.some((l) => l.startsWith('POST /v1/completions 400'))).toBe(true);
  });
});
