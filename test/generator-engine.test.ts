/**
 * The batcher over weights/tiny on the GPU, through the one-slot engine over Generator's forward
 * (src/gen/generator-engine.ts, what `serve` runs until the many-slot engine is wired in): the same
 * tokens as Generator.generate with the prompt prefilled in chunks, and logprobs read back from the
 * real logits.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gpu } from './util/gpu.ts';
import { loadLlamaModel } from '../src/formats/hf-checkpoint.ts';
import { Tokenizer } from '../src/data/tokenizer.ts';
import { ContinuousBatcher } from '../src/gen/continuous.ts';
import { Generator, type GenerateOptions } from '../src/gen/generate.ts';
import { GeneratorSlotEngine } from '../src/gen/generator-engine.ts';
import { eosTokenIds } from '../src/model/config.ts';

describe.skipIf(!gpu)('ContinuousBatcher over weights/tiny (GeneratorSlotEngine)', () => {
  let tokenizer: Tokenizer;
  let generator: Generator;
  let batcher: ContinuousBatcher;
  const PROMPT = 'Socrates (speaking): What is virtue? It is knowledge, and knowledge can be taught.<|eot|>\nMan (';

  beforeAll(async () => {
    tokenizer = await Tokenizer.load('weights/tiny/tokenizer.model');
    const model = await loadLlamaModel(gpu!, 'weights/tiny', 'f32');
    generator = await Generator.create(model, tokenizer, { contextLength: 128 });
    // The engine shares the generator's KV cache: the two are used one after the other here.
    batcher = new ContinuousBatcher(new GeneratorSlotEngine(generator, 5), tokenizer, { maxQueue: 4, maxPositions: model.maxPositions, eosIds: eosTokenIds(model.cfg) });
  });
  afterAll(() => generator?.destroy());

  const BASE: GenerateOptions = { maxNewTokens: 12, temperature: 0.9, topP: 0.95, seed: 11, stop: [], stopOnSpeakerTag: false };

  it('gives Generator\'s tokens with the prompt prefilled 5 tokens a step', async () => {
    for (const o of [BASE, { ...BASE, temperature: 0 }, { ...BASE, repetitionPenalty: 1.3, seed: 3 }]) {
      const whole = await generator.generate(PROMPT, o);
      const chunked = await batcher.generate(PROMPT, o);
      expect(chunked.tokens, JSON.stringify(o)).toEqual(whole.tokens);
      expect(chunked.text).toBe(whole.text);
    }
  });

  it('logprobs from the real logits: greedy picks the top alternative, the same through Generator and the batcher', async () => {
    const o = { ...BASE, temperature: 0, logprobs: 4 };
    const viaGenerator = await generator.generate(PROMPT, o);
    const viaBatcher = await batcher.generate(PROMPT, o);
    expect(viaGenerator.logprobs).toHaveLength(viaGenerator.tokens.length);
    for (const [i, lp] of viaGenerator.logprobs!.entries()) {
      expect(lp.top).toHaveLength(4);
      expect(lp.token).toBe(lp.top[0].token);
      expect(lp.logprob).toBe(lp.top[0].logprob);
      expect(lp.logprob).toBeLessThanOrEqual(0);
      expect(viaBatcher.logprobs![i].token).toBe(lp.token);
      expect(viaBatcher.logprobs![i].logprob).toBeCloseTo(lp.logprob, 4);
    }
  });
});
