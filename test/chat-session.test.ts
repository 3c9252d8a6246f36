// The chat loop's turns (src/gen/chat.ts ChatSession) against a stand-in generator and the tiny
// model's tokenizer: every prompt keeps the meta prompt header and fits the context with
// --max-new-tokens, the oldest turns go first (said once), a message too long even alone is one
// line and leaves the chat as it was.
import { beforeAll, describe, expect, it } from 'vitest';
import { Tokenizer } from '../src/data/tokenizer.ts';
import { chatSettingOf, buildChatPrompt, ChatTooLongError } from '../src/gen/chat-prompt.ts';
import { ChatSession, type ChatGenerator } from '../src/gen/chat.ts';
import type { GenerateOptions, GenerateResult } from '../src/gen/generate.ts';
import { UserError } from '../src/errors.ts';

let tok: Tokenizer;
beforeAll(async () => {
  tok = await Tokenizer.load('weights/tiny/tokenizer.model');
});

/** Records the prompts it is given and answers each with `speaking): Reply n.` */
function fakeGenerator(contextLength: number) {
  const prompts: string[] = [];
  const calls: GenerateOptions[] = [];
  const gen: ChatGenerator = {
    tokenizer: tok,
    contextLength,
    async generate(prompt: string, opts: GenerateOptions): Promise<GenerateResult> {
      prompts.push(prompt);
      calls.push(opts);
      const text = `speaking): Reply ${prompts.length}.`;
      opts.onText?.(text);
      return { text, tokens: [], promptTokens: tok.encode(prompt, { bos: true }).length, newTokens: 4, finishReason: 'stop', prefillSeconds: 0, decodeSeconds: 0 };
    },
  };
  return { gen, prompts, calls };
}

const setting = chatSettingOf({ name: 'Beethoven' });
const opts = { userName: 'Man', temperature: 0.5, topP: 0.95, maxNewTokens: 256, seed: 42 };
const count = (p: string) => tok.encode(p, { bos: true }).length;
const header = buildChatPrompt(setting, []).slice(0, -'Beethoven ('.length);

describe('ChatSession', () => {
  it('keeps the header and drops the oldest turns when the context is full; says so once', async () => {
    const { gen, prompts, calls } = fakeGenerator(512);
    const notes: string[] = [];
    const chat = new ChatSession(gen, setting, opts, (l) => notes.push(l));
    const question = (i: number) => `Question ${i}: ` + 'tell me about your symphonies and your sonatas, maestro. '.repeat(4).trim();
    for (let i = 0; i < 10; i++) {
      const turn = await chat.reply(question(i));
      expect(turn.content).toBe(`Reply ${i + 1}.`);
    }
    expect(prompts).toHaveLength(10);
    for (const [i, p] of prompts.entries()) {
      expect(p.startsWith(header), `prompt ${i}`).toBe(true);
      expect(p.endsWith(`Man (speaking): ${question(i)}<|eot|>\nBeethoven (`), `prompt ${i}`).toBe(true);
      expect(count(p), `prompt ${i}`).toBeLessThanOrEqual(512 - 256);
      expect(calls[i]).toMatchObject({ maxNewTokens: 256, seed: 42 + i, stop: ['<|eot|>'], stopOnSpeakerTag: true });
    }
    // The window shrank below the paper's 8 entries at some point: said once.
    expect(prompts[9]).not.toContain('Question 6:');
    expect(notes).toHaveLength(1);
    expect(notes[0]).toMatch(/^the chat no longer fits the 512-token context with --max-new-tokens 256: the prompt keeps the character's header and only the last \d entr(y|ies) of the chat$/);
    expect(chat.history).toHaveLength(20);
  });

  it('refuses a message too long even alone with the header: one line, nothing sent, the chat goes on', async () => {
    const { gen, prompts } = fakeGenerator(512);
    const chat = new ChatSession(gen, setting, opts, () => {});
    await chat.reply('Hello there.');
    const long = Array.from({ length: 5000 }, (_, i) => `word${i % 50}`).join(' ');
    let err: unknown;
    try {
      await chat.reply(long);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(/^your message is too long: it makes a \d+-token prompt with the character's prompt header, and 256 fit \(the 512-token context less --max-new-tokens 256\); not sent$/);
    expect(prompts).toHaveLength(1);
    expect(chat.history).toHaveLength(2);
    const next = await chat.reply('Who are you?');
    expect(next.content).toBe('Reply 2.');
    expect(prompts[1].startsWith(header)).toBe(true);
    expect(prompts[1]).toContain('Man (speaking): Hello there.<|eot|>\nBeethoven (speaking): Reply 1.<|eot|>\nMan (speaking): Who are you?<|eot|>\nBeethoven (');
  });

  it('refuses at once a --max-new-tokens that leaves no room for the header', () => {
    const { gen } = fakeGenerator(512);
    const least = count(buildChatPrompt(setting, [{ role: 'Man', action: '(speaking)', content: '' }]));
    expect(() => new ChatSession(gen, setting, { ...opts, maxNewTokens: 450 }, () => {})).toThrow(
      new UserError(`the character's prompt header and an empty message make ${least} tokens, and 62 fit (the 512-token context less --max-new-tokens 450): give a --max-new-tokens under ${512 - least}`));
    // Under it, the shortest message fits.
    expect(() => new ChatSession(gen, setting, { ...opts, maxNewTokens: 512 - least - 1 }, () => {})).not.toThrow();
    expect(() => new ChatSession(gen, setting, { ...opts, maxNewTokens: 450 }, () => {})).not.toThrow(ChatTooLongError);
  });
});
