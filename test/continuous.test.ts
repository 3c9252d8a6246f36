/**
 * ContinuousBatcher (src/gen/continuous.ts) over a CPU SlotEngine (test/util/fake-slot-engine.ts):
 * the step policy (decode rows + one prefill chunk of the oldest prefilling sequence per step), the
 * bounded queue, slots freed on a client's exit and on abortAll, and sampling that gives a seeded
 * sequence the same tokens alone, among others, and as Generator's loop over SequenceDecoding does.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { Tokenizer } from '../src/data/tokenizer.ts';
import { ContinuousBatcher, QueueFull } from '../src/gen/continuous.ts';
import { SequenceDecoding, type GenerateOptions, type GenerateResult } from '../src/gen/sequence.ts';
import { FakeSlotEngine, logitsOf, penalised } from './util/fake-slot-engine.ts';

let tokenizer: Tokenizer;
beforeAll(async () => {
  tokenizer = await Tokenizer.load('weights/tiny/tokenizer.model');
});

const CONTEXT = 128;
const EOS = [2];
const OPTS: GenerateOptions = { maxNewTokens: 12, temperature: 0.9, topP: 0.95, seed: 7, stop: [], stopOnSpeakerTag: false };
const LONG_PROMPT = 'Socrates speaks of virtue and of the soul, and of the city. '.repeat(3);

function batcher(opts: { slots?: number; prefillChunk?: number; maxQueue?: number; stepMs?: number } = {}) {
  const engine = new FakeSlotEngine(opts.slots ?? 4, CONTEXT, opts.prefillChunk ?? 8, tokenizer.vocabSize, opts.stepMs ?? 0);
  return { engine, batcher: new ContinuousBatcher(engine, tokenizer, { maxQueue: opts.maxQueue ?? 8, maxPositions: CONTEXT, eosIds: EOS }) };
}

/**
 * The generation as Generator.generate runs it (one sequence: the whole prompt in one forward, then
 * one token at a time), over the fake engine's model.
 */
function alone(prompt: string, opts: GenerateOptions): GenerateResult {
  const seq = new SequenceDecoding({ tokenizer, contextLength: CONTEXT, maxPositions: CONTEXT, eosIds: EOS }, prompt, opts);
  const history = [...seq.promptIds];
  const row = () => {
    const s = seq.rowSampling();
    const logits = penalised(logitsOf(history, tokenizer.vocabSize), s);
    const e = Array.from(logits, (l) => Math.exp(l * s.invTemperature));
    const z = e.reduce((a, b) => a + b, 0);
    return { probs: Float32Array.from(e, (x) => x / z), logits };
  };
  for (let feed = seq.next(row()); feed; feed = seq.next(row())) history.push(feed.id);
  return seq.result();
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('ContinuousBatcher', () => {
  it('interleaves a long prompt\'s prefill chunks with the decode steps of a running stream, whose tokens keep coming', async () => {
    const { engine, batcher: b } = batcher({ slots: 2, prefillChunk: 4 });
    let streamTokens = 0;
    const stream = b.generate('Hello', { ...OPTS, maxNewTokens: 60, onText: () => streamTokens++ });
    while (streamTokens < 3) await sleep(1);
    const before = streamTokens;
    const stepsBefore = engine.steps.length;
    const long = b.generate(LONG_PROMPT, OPTS);
    const longIds = tokenizer.encode(LONG_PROMPT, { bos: true }).length;
    await long;
    const during = engine.steps.slice(stepsBefore).filter((s) => s.prefill);
    expect(during.length).toBe(Math.ceil(longIds / 4)); // in chunks of at most prefillChunk
    expect(during.map((s) => s.prefill!.pos0)).toEqual(during.map((_, i) => 4 * i));
    // Every chunk shared its step with the stream's decode row: the stream never waited.
    for (const s of during) expect(s.decode.map((d) => d.slot)).toEqual([0]);
    expect(during.filter((s) => s.prefill!.sampling).length).toBe(1); // only the last chunk returns a distribution
    expect(streamTokens).toBeGreaterThan(before + during.length - 2);
    const r = await stream;
    expect(r.newTokens).toBeGreaterThan(0);
  });

  it('prefills the oldest sequence first, one chunk per step', async () => {
    const { engine, batcher: b } = batcher({ slots: 3, prefillChunk: 8 });
    await Promise.all([b.generate(LONG_PROMPT, OPTS), b.generate(LONG_PROMPT + 'x', OPTS), b.generate('Hi', OPTS)]);
    const order = engine.steps.filter((s) => s.prefill).map((s) => s.prefill!.slot);
    const firstOf = (slot: number) => order.indexOf(slot);
    const lastOf = (slot: number) => order.lastIndexOf(slot);
    expect(lastOf(0)).toBeLessThan(firstOf(1));
    expect(lastOf(1)).toBeLessThan(firstOf(2));
  });

  it('gives a seeded sequence the same tokens alone, among others, in any slot, and as Generator\'s one-sequence loop', async () => {
    const requests: [string, GenerateOptions][] = [
      ['Socrates (', { ...OPTS, seed: 3 }],
      [LONG_PROMPT, { ...OPTS, seed: 4, temperature: 0 }],
      ['Hello there', { ...OPTS, seed: 5, repetitionPenalty: 1.3, topP: 1 }],
      ['Once upon a time', { ...OPTS, seed: 6, maxNewTokens: 30, logprobs: 2 }],
      ['Short', { ...OPTS, seed: 7, stop: ['e'] }],
    ];
    const expected = requests.map(([p, o]) => alone(p, o));
    const strip = (r: GenerateResult) => ({ text: r.text, tokens: r.tokens, finishReason: r.finishReason, promptTokens: r.promptTokens, logprobs: r.logprobs });
    // Alone, one at a time through a batcher.
    const { batcher: one } = batcher({ slots: 1 });
    for (const [i, [p, o]] of requests.entries()) expect(strip(await one.generate(p, o))).toEqual(strip(expected[i]));
    // All at once with 2 slots (queueing, slot reuse) and a small prefill chunk.
    const { batcher: b } = batcher({ slots: 2, prefillChunk: 3 });
    const together = await Promise.all(requests.map(([p, o]) => b.generate(p, o)));
    expect(together.map(strip)).toEqual(expected.map(strip));
    expect(expected.some((r) => r.finishReason === 'stop')).toBe(true); // the stop string ended one
    expect(new Set(expected.map((r) => r.text)).size).toBe(requests.length);
  });

  it('refuses a call beyond maxQueue at once with QueueFull and a retry estimate', async () => {
    const { batcher: b } = batcher({ slots: 1, maxQueue: 2, stepMs: 2 });
    const calls = [b.generate('a', OPTS), b.generate('b', OPTS), b.generate('c', OPTS)];
    expect(b.metrics()).toMatchObject({ running: 1, queued: 2 });
    const refused = b.generate('d', OPTS);
    await expect(refused).rejects.toBeInstanceOf(QueueFull);
    const e = (await refused.catch((x) => x)) as QueueFull;
    expect(e.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect(e.message).toMatch(/^the server is busy: 2 generation\(s\) are already waiting for a slot; retry in about \d+ s$/);
    expect(() => b.checkRoom(1)).toThrow(QueueFull);
    await Promise.all(calls);
    expect(() => b.checkRoom(3)).not.toThrow(); // one slot + two places in the queue
    expect(() => b.checkRoom(4)).toThrow(QueueFull);
    expect(b.capacity).toBe(3);
    const m = b.metrics();
    expect(m).toMatchObject({ running: 0, queued: 0, submitted: 3 });
    expect(m.ended.rejected).toBe(1 + 1 + 4); // 'd', checkRoom(1) and checkRoom(4): generations, not calls
  });

  it('frees the slot of a sequence whose onText throws (a client gone) at once, and reuses it', async () => {
    const { engine, batcher: b } = batcher({ slots: 1, maxQueue: 4 });
    class Gone extends Error {}
    let pieces = 0;
    let stepsAtThrow = -1;
    const onText = () => {
      if (++pieces < 2) return;
      stepsAtThrow = engine.steps.length;
      throw new Gone();
    };
    const leaving = b.generate('Hello', { ...OPTS, maxNewTokens: 50, onText });
    const next = b.generate('Socrates (', { ...OPTS, seed: 9 });
    await expect(leaving).rejects.toBeInstanceOf(Gone);
    const r = await next;
    expect(r.tokens).toEqual(alone('Socrates (', { ...OPTS, seed: 9 }).tokens);
    // The slot went to the waiting call in the very next step.
    expect(engine.steps[stepsAtThrow]).toMatchObject({ decode: [], prefill: { slot: 0, pos0: 0 } });
    expect(b.metrics().ended).toMatchObject({ cancelled: 1, stop: expect.any(Number), length: expect.any(Number) });
    expect(b.metrics().running).toBe(0);
  });

  it('abortAll rejects the waiting calls at once and the running ones at their next step; later calls run', async () => {
    const { engine, batcher: b } = batcher({ slots: 2, maxQueue: 4, stepMs: 5 });
    class Stopping extends Error {}
    let texts = 0;
    const calls = [0, 1, 2, 3].map((i) => b.generate(`prompt ${i}`, { ...OPTS, maxNewTokens: 100, onText: () => texts++ }));
    const settled = Promise.allSettled(calls);
    while (texts < 2) await sleep(1);
    const stepsAtAbort = engine.steps.length;
    const err = new Stopping('stop');
    b.abortAll(err);
    expect(b.metrics().queued).toBe(0);
    const results = await settled;
    expect(results.every((r) => r.status === 'rejected' && r.reason === err)).toBe(true);
    expect(engine.steps.length - stepsAtAbort).toBeLessThanOrEqual(1); // the step in flight, no more
    expect(b.metrics()).toMatchObject({ running: 0, queued: 0, ended: { aborted: 4 } });
    expect((await b.generate('after', OPTS)).newTokens).toBeGreaterThan(0);
  });

  it('a failed engine step rejects the sequences in it with the engine\'s error', async () => {
    const { engine, batcher: b } = batcher({ slots: 2 });
    engine.failNext = new Error('device lost');
    await expect(b.generate('Hello', OPTS)).rejects.toThrow('device lost');
    expect((await b.generate('Hello', OPTS)).newTokens).toBeGreaterThan(0);
    expect(b.metrics().ended.error).toBe(1);
  });

  it('counts tokens, prompt tokens and time to first token', async () => {
    const { batcher: b } = batcher({ slots: 2 });
    const rs = await Promise.all(['a', 'bb', 'ccc'].map((p, i) => b.generate(p, { ...OPTS, seed: i })));
    const m = b.metrics();
    expect(m.generatedTokens).toBe(rs.reduce((a, r) => a + r.newTokens, 0));
    expect(m.promptTokens).toBe(rs.reduce((a, r) => a + r.promptTokens, 0));
    expect(m.submitted).toBe(3);
    expect(m.timeToFirstToken.count).toBe(3);
    expect(m.timeToFirstToken.buckets.at(-1)!.count).toBe(3);
    expect(m.timeToFirstToken.sum).toBeGreaterThan(0);
  });

  it('logprobs: log-softmax of the penalised logits before the temperature, with the top k', async () => {
    const { batcher: b } = batcher({ slots: 2 });
    const opts = { ...OPTS, temperature: 1.7, repetitionPenalty: 1.5, logprobs: 3, maxNewTokens: 4 };
    const streamed: number[] = [];
    const r = await b.generate('Hello', { ...opts, onToken: (t) => streamed.push(t.token) });
    expect(streamed).toEqual(r.tokens);
    expect(r.logprobs).toHaveLength(r.tokens.length);
    // By hand: the history's logits, each seen id divided (positive) or multiplied (negative) by 1.5.
    const history = tokenizer.encode('Hello', { bos: true });
    for (const [i, lp] of r.logprobs!.entries()) {
      const raw = logitsOf(history, tokenizer.vocabSize);
      const seen = new Set(history);
      const l = Array.from(raw, (x, id) => (seen.has(id) ? (x < 0 ? x * 1.5 : x / 1.5) : x));
      let z = 0;
      for (const x of l) z += Math.exp(x);
      const logp = (id: number) => l[id] - Math.log(z);
      expect(lp.token).toBe(r.tokens[i]);
      expect(lp.logprob).toBeCloseTo(logp(lp.token), 5);
      expect(lp.text).toBe(new TextDecoder().decode(tokenizer.tokenBytes(lp.token)));
      const ranked = [...l.keys()].sort((a, c) => l[c] - l[a] || a - c).slice(0, 3);
      expect(lp.top.map((t) => t.token)).toEqual(ranked);
      for (const t of lp.top) expect(t.logprob).toBeCloseTo(logp(t.token), 5);
      history.push(r.tokens[i]);
    }
    // 0 alternatives: the sampled token's only; no logprobs option: none.
    expect((await b.generate('Hello', { ...opts, logprobs: 0 })).logprobs!.every((t) => t.top.length === 0)).toBe(true);
    expect((await b.generate('Hello', OPTS)).logprobs).toBeUndefined();
    await expect(b.generate('Hello', { ...OPTS, logprobs: 21 })).rejects.toThrow(/logprobs must be an integer in \[0, 20\], got 21/);
  });

  it('cuts a prompt too long for its room as Generator does, and says so', async () => {
    const { batcher: b } = batcher({ slots: 1 });
    const cuts: unknown[] = [];
    const prompt = 'virtue '.repeat(200);
    const r = await b.generate(prompt, { ...OPTS, maxNewTokens: 20, onPromptCut: (c) => cuts.push(c) });
    expect(cuts).toEqual([{ total: tokenizer.encode(prompt, { bos: true }).length, kept: CONTEXT - 20, room: CONTEXT - 20 }]);
    expect(r.promptTokens).toBe(CONTEXT - 20);
    expect(r.tokens).toEqual(alone(prompt, { ...OPTS, maxNewTokens: 20 }).tokens);
  });
});
