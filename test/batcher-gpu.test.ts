/**
 * Continuous batching on the GPU: the ContinuousBatcher over the BatchEngine on weights/tiny (f32),
 * what `serve` runs.
 * - Batch invariance (issue 11's determinism): a seeded request gives the same tokens and the same
 *   logprobs (bit for bit) whether it runs alone or among 15 others of other lengths and sampling,
 *   greedy and sampled. This holds because every kernel of the engine computes a row from that
 *   row alone (src/gen/batch-engine.ts; test/batch-engine.test.ts checks the probabilities).
 * - Against the single-sequence Generator (other kernels for prefill and decode, so the same
 *   tokens, and logprobs within test/tolerances.ts's batchVsSerial).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gpu } from './util/gpu.ts';
import { loadLlamaModel } from '../src/formats/hf-checkpoint.ts';
import { Tokenizer } from '../src/data/tokenizer.ts';
import { ContinuousBatcher } from '../src/gen/continuous.ts';
import { BatchEngine } from '../src/gen/batch-engine.ts';
import { Generator, type GenerateOptions, type GenerateResult } from '../src/gen/generate.ts';
import { eosTokenIds } from '../src/model/config.ts';
import type { LlamaModel } from '../src/model/llama.ts';
import { TOL } from './tolerances.ts';

describe.skipIf(!gpu)('ContinuousBatcher over BatchEngine, weights/tiny f32', () => {
  let tokenizer: Tokenizer;
  let model: LlamaModel;
  let generator: Generator;
  let engine: BatchEngine;
  let batcher: ContinuousBatcher;
  const PROMPT = 'Socrates (speaking): What is virtue? It is knowledge, and knowledge can be taught.<|eot|>\nMan (';
  const OTHERS = [
    'Beethoven (speaking): I was born in Bonn.',
    'Man (speaking): Tell me about your music, please, and about your deafness and how you went on composing.<|eot|>\nBeethoven (',
    'Hello',
    'Cleopatra (thinking): The Romans are at the gates of Alexandria again, and Antony',
  ];

  beforeAll(async () => {
    tokenizer = await Tokenizer.load('weights/tiny/tokenizer.model');
    model = await loadLlamaModel(gpu!, 'weights/tiny', 'f32');
    generator = await Generator.create(model, tokenizer, { contextLength: 128 });
    engine = await BatchEngine.create(model, { slots: 16, contextLength: 128, prefillChunk: 7 });
    batcher = new ContinuousBatcher(engine, tokenizer, { maxQueue: 16, maxPositions: model.maxPositions, eosIds: eosTokenIds(model.cfg) });
  });
  afterAll(() => {
    generator?.destroy();
    engine?.destroy();
  });

  const BASE: GenerateOptions = { maxNewTokens: 12, temperature: 0.9, topP: 0.95, seed: 11, stop: [], stopOnSpeakerTag: false, logprobs: 3 };
  const SETTINGS: { name: string; opts: GenerateOptions }[] = [
    { name: 'greedy', opts: { ...BASE, temperature: 0 } },
    { name: 'seeded sampling', opts: BASE },
    { name: 'seeded sampling with a repetition penalty', opts: { ...BASE, repetitionPenalty: 1.3, seed: 3 } },
  ];

  /** 15 other generations: other prompts, lengths, seeds and sampling, some still prefilling when ours decodes. */
  const othersRun = () =>
    Array.from({ length: 15 }, (_, i) =>
      batcher.generate(OTHERS[i % OTHERS.length].repeat(1 + (i % 3)), { ...BASE, seed: 100 + i, temperature: i % 2 ? 0 : 1.1, maxNewTokens: 4 + i, logprobs: undefined }),
    );

  for (const { name, opts } of SETTINGS) {
    it(`${name}: the same tokens and logprobs alone and among 15 others`, async () => {
      const alone = await batcher.generate(PROMPT, opts);
      // Ours arrives second, so it gets another slot and shares every step with other rows.
      const first = batcher.generate(OTHERS[1], { ...BASE, maxNewTokens: 20 });
      const crowd = batcher.generate(PROMPT, opts);
      const rest = othersRun();
      const [among] = await Promise.all([crowd, first, ...rest]);
      expect(among.tokens).toEqual(alone.tokens);
      expect(among.text).toBe(alone.text);
      expect(among.logprobs).toEqual(alone.logprobs);
      expect(batcher.metrics().running).toBe(0);
    });
  }

  it('the same tokens as Generator.generate (its own prefill and decode kernels), logprobs within batchVsSerial', async () => {
    for (const { name, opts } of SETTINGS) {
      const serial: GenerateResult = await generator.generate(PROMPT, opts);
      const batched = await batcher.generate(PROMPT, opts);
      expect(batched.tokens, name).toEqual(serial.tokens);
      expect(batched.text, name).toBe(serial.text);
      for (const [i, lp] of serial.logprobs!.entries()) {
        const b = batched.logprobs![i];
        expect(b.token).toBe(lp.token);
        expect(b.top.map((t) => t.token)).toEqual(lp.top.map((t) => t.token));
        // A relative difference ε of a probability is a difference ε of its log.
        expect(Math.abs(b.logprob - lp.logprob)).toBeLessThanOrEqual(TOL.batchVsSerial.rtol);
      }
    }
  });
});
