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
import { loraSpecs, uploadAdapter, type LoraConfig } from '../src/model/lora.ts';
import { Rng } from '../src/util/random.ts';

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

describe.skipIf(!gpu)('ContinuousBatcher over BatchEngine with a LoRA adapter, weights/tiny f32', () => {
  let tokenizer: Tokenizer;
  let model: LlamaModel;
  let generator: Generator;
  let engine: BatchEngine;
  let batcher: ContinuousBatcher;

  beforeAll(async () => {
    tokenizer = await Tokenizer.load('weights/tiny/tokenizer.model');
    model = await loadLlamaModel(gpu!, 'weights/tiny', 'f32');
    // B is not zero (a trained adapter's is not), so the adapter changes the continuations.
    const c: LoraConfig = { r: 4, alpha: 8, dropout: 0, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] };
    const rng = new Rng(3);
    const tensors = new Map(loraSpecs(model.cfg, c).map((s) => [s.name, Float32Array.from({ length: s.shape[0]! * s.shape[1]! }, () => 0.1 * (rng.uniform() - 0.5))]));
    model.adapter = uploadAdapter(gpu!, model.cfg, c, tensors);
    generator = await Generator.create(model, tokenizer, { contextLength: 128 });
    engine = await BatchEngine.create(model, { slots: 4, contextLength: 128, prefillChunk: 7 });
    batcher = new ContinuousBatcher(engine, tokenizer, { maxQueue: 4, maxPositions: model.maxPositions, eosIds: eosTokenIds(model.cfg) });
  });
  afterAll(() => {
    generator?.destroy();
    engine?.destroy();
  });

  it('the adapted model gives Generator\'s greedy tokens, the same alone and among others, and the adapter moves the log-probabilities', async () => {
    const prompt = 'Man (speaking): Tell me about your music.<|eot|>\nBeethoven (';
    const opts: GenerateOptions = { maxNewTokens: 12, temperature: 0, topP: 1, seed: 1, stop: [], stopOnSpeakerTag: false, logprobs: 0 };
    const serial = await generator.generate(prompt, opts);
    const alone = await batcher.generate(prompt, opts);
    const [among] = await Promise.all([batcher.generate(prompt, opts), batcher.generate('Hello there', { ...opts, maxNewTokens: 20 }), batcher.generate('Socrates (thinking): ', opts)]);
    expect(alone.tokens).toEqual(serial.tokens);
    expect(among.tokens).toEqual(alone.tokens);
    expect(among.logprobs).toEqual(alone.logprobs);
    const adapter = model.adapter;
    model.adapter = null;
    const base = await Generator.create(model, tokenizer, { contextLength: 128 });
    model.adapter = adapter;
    const unadapted = await base.generate(prompt, opts);
    base.destroy();
    // The adapter is in the numbers (its greedy tokens may still coincide with the base's).
    expect(unadapted.logprobs![0].logprob).not.toBeCloseTo(serial.logprobs![0].logprob, 3);
  });
});
