import { describe, expect, it } from 'vitest';
import { argmax, sampleTopP } from '../src/gen/sampler.ts';
import { StopMatcher } from '../src/gen/stop.ts';
import { buildChatPrompt, ChatPromptError, ChatTooLongError, fitChatPrompt, parseCompletion } from '../src/gen/chat-prompt.ts';
import { Rng } from '../src/util/random.ts';

describe('sampler', () => {
  const probs = [0.05, 0.5, 0.3, 0.15];
  it('argmax picks the first maximum', () => {
    expect(argmax([1, 3, 3, 2])).toBe(1);
  });
  it('top-p keeps the smallest nucleus reaching p', () => {
    // Sorted: 1 (0.5), 2 (0.3) -> 0.8 >= 0.8: only tokens 1 and 2 may be drawn.
    const seen = new Set<number>();
    const rng = new Rng(7);
    for (let i = 0; i < 2000; i++) seen.add(sampleTopP(probs, 0.8, rng.uniform()));
    expect([...seen].sort()).toEqual([1, 2]);
  });
  it('top-p sampling frequencies follow the renormalised nucleus', () => {
    const rng = new Rng(123);
    const counts = [0, 0, 0, 0];
    const n = 20000;
    for (let i = 0; i < n; i++) counts[sampleTopP(probs, 0.8, rng.uniform())]++;
    // Nucleus {1: 0.5, 2: 0.3} renormalised: 0.625 / 0.375; binomial std ~ 0.0034.
    expect(Math.abs(counts[1] / n - 0.625)).toBeLessThan(0.02);
    expect(Math.abs(counts[2] / n - 0.375)).toBeLessThan(0.02);
  });
  it('topP = 1 samples the whole distribution; the coin maps monotonically', () => {
    expect(sampleTopP(probs, 1, 0)).toBe(0);
    expect(sampleTopP(probs, 1, 0.06)).toBe(1);
    expect(sampleTopP(probs, 1, 0.999)).toBe(3);
  });
  it('top-p 0 keeps the single most likely token (greedy) whatever the coin; ties go to the lowest index', () => {
    for (const coin of [0, 0.3, 0.5, 0.999]) {
      expect(sampleTopP(probs, 0, coin)).toBe(argmax(probs));
      expect(sampleTopP([0.2, 0.4, 0.4], 0, coin)).toBe(1);
    }
    // A large vocabulary with a flat tail: still the maximum, never a tail token.
    const big = Array.from({ length: 32000 }, (_, i) => (i === 31999 ? 0.01 : 0.99 / 31999));
    for (const coin of [0, 0.5, 0.999]) expect(sampleTopP(big, 0, coin)).toBe(31999);
  });
  it('a seed gives the same stream: one coin drawn per token, whatever top-p', () => {
    const stream = (topP: number, seed: number) => {
      const rng = new Rng(seed);
      return Array.from({ length: 50 }, () => sampleTopP(probs, topP, rng.uniform()));
    };
    for (const topP of [0, 0.8, 1]) expect(stream(topP, 11)).toEqual(stream(topP, 11));
    expect(stream(1, 11)).not.toEqual(stream(1, 12));
  });
  it('is deterministic for a given coin', () => {
    const big = Array.from({ length: 32000 }, (_, i) => ((i * 7919) % 101) + 1);
    const total = big.reduce((a, b) => a + b, 0);
    const p = big.map((v) => v / total);
    expect(sampleTopP(p, 0.95, 0.4242)).toBe(sampleTopP(p, 0.95, 0.4242));
  });
});

describe('stop matcher', () => {
  function run(pieces: string[], stops = ['<|eot|>']) {
    const m = new StopMatcher(stops);
    let shown = pieces.map((p) => m.push(p)).join('');
    shown += m.flush();
    return { shown, m };
  }
  it('stops at <|eot|> split across pieces and never shows it', () => {
    const { shown, m } = run(['I was', ' born in Bonn.<|e', 'ot|>\nMan (speaking): hi']);
    expect(shown).toBe('I was born in Bonn.');
    expect(m.reason).toBe('<|eot|>');
  });
  it('stops when the next speaker tag starts', () => {
    const { shown, m } = run(['Music is', ' my life.\nMa', 'n (speaking', '): And?']);
    expect(shown).toBe('Music is my life.');
    expect(m.reason).toBe('speaker-tag');
  });
  it('does not stop on ordinary new lines and shows held-back text at the end', () => {
    const { shown, m } = run(['First line.\nSecond (really) line', ' ends']);
    expect(shown).toBe('First line.\nSecond (really) line ends');
    expect(m.stopped).toBe(false);
  });
  it('holds back a partial stop string until it resolves', () => {
    const m = new StopMatcher(['<|eot|>']);
    expect(m.push('abc<|')).toBe('abc');
    expect(m.push('x')).toBe('<|x');
  });
});

describe('chat prompt', () => {
  const setting = { shortName: 'Beethoven', fullName: 'Ludwig van Beethoven', location: 'Coffee Shop - Afternoon', status: 'Beethoven is casually chatting with a man from the 21st century.' };
  it('is the meta prompt, the kept history turns, then "<Short> ("', () => {
    const p = buildChatPrompt(setting, [
      { role: 'Man', action: '(speaking)', content: 'What do you think of your father?' },
      { role: 'Man', action: '(thinking)', content: 'hidden' },
      { role: 'Beethoven', action: '(thinking)', content: 'He was harsh.' },
    ]);
    expect(p.startsWith('I want you to act like Ludwig van Beethoven. ')).toBe(true);
    expect(p).toContain('\nLocation: Coffee Shop - Afternoon\nStatus: Beethoven is casually');
    expect(p.endsWith('The interactions are as follows:\n\nMan (speaking): What do you think of your father?<|eot|>\nBeethoven (thinking): He was harsh.<|eot|>\nBeethoven (')).toBe(true);
    expect(p).not.toContain('hidden');
  });
  it('keeps only the last 8 history entries', () => {
    const hist = Array.from({ length: 12 }, (_, i) => ({ role: 'Man', action: '(speaking)', content: `q${i}` }));
    const p = buildChatPrompt(setting, hist);
    expect(p).not.toContain('q3<');
    expect(p).toContain('q4<');
  });
  describe('fitted to the context: the header always, the oldest turns dropped first', () => {
    const words = (p: string) => p.split(/\s+/).filter(Boolean).length; // a stand-in tokenizer: one token a word
    const header = buildChatPrompt(setting, []).slice(0, -'Beethoven ('.length);
    const turn = (i: number, n = 10) => ({ role: i % 2 ? 'Beethoven' : 'Man', action: '(speaking)', content: `t${i} ` + 'la '.repeat(n - 1).trim() });
    const hist = Array.from({ length: 12 }, (_, i) => turn(i));
    it('keeps the paper\'s 8-turn window when it fits', () => {
      const r = fitChatPrompt(setting, hist, words, 10_000);
      expect(r.prompt).toBe(buildChatPrompt(setting, hist));
      expect(r).toMatchObject({ turns: 8, tokens: words(r.prompt) });
    });
    it('then as many of the newest as fit, after the whole header', () => {
      const room = words(header) + 3 * 12 + 2; // three 12-word turn lines and `Beethoven (`, not four
      const r = fitChatPrompt(setting, hist, words, room);
      expect(r.turns).toBe(3);
      expect(r.prompt).toBe(buildChatPrompt(setting, hist.slice(-3)));
      expect(r.prompt.startsWith(header)).toBe(true);
      expect(r.tokens).toBeLessThanOrEqual(room);
    });
    it('refuses a newest turn that cannot fit with the header: one line, with the counts', () => {
      const long = [...hist, turn(12, 5000)];
      let err: unknown;
      try {
        fitChatPrompt(setting, long, words, 300);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ChatTooLongError);
      expect(err).toBeInstanceOf(ChatPromptError);
      const e = err as ChatTooLongError;
      expect(e.tokens).toBe(words(buildChatPrompt(setting, long.slice(-1))));
      expect(e.room).toBe(300);
      expect(e.message).not.toContain('\n');
    });
    it('an empty history is the header alone; a header that cannot fit is refused too', () => {
      expect(fitChatPrompt(setting, [], words, 10_000)).toMatchObject({ turns: 0, prompt: buildChatPrompt(setting, []) });
      expect(() => fitChatPrompt(setting, [], words, 10)).toThrow(ChatTooLongError);
    });
  });
  it('parses the completed action and keeps colons in the reply', () => {
    expect(parseCompletion('Beethoven', 'speaking): Time: it flies.')).toEqual({ role: 'Beethoven', action: '(speaking)', content: 'Time: it flies.' });
    expect(parseCompletion('Beethoven', 'thinking): Hmm.').action).toBe('(thinking)');
  });
});
