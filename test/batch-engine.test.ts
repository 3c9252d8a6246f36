/**
 * BatchEngine (src/gen/batch-engine.ts) on weights/tiny: continuous batching's GPU side against the
 * serial Generator, and its determinism: a sequence gets the same bits alone or among others, in a
 * fresh or a reused slot, whatever the chunking of its prompt.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadLlamaModel } from '../src/formats/hf-checkpoint.ts';
import { Tokenizer } from '../src/data/tokenizer.ts';
import { distinctIds } from '../src/gen/sequence.ts';
import { Generator } from '../src/gen/generate.ts';
import { BatchEngine } from '../src/gen/batch-engine.ts';
import type { EngineOutput, EngineStep, RowSampling } from '../src/gen/engine.ts';
import { argmax, sampleTopP } from '../src/gen/sampler.ts';
import { createStorage, createStorageFrom, readF32 } from '../src/gpu/buffers.ts';
import { Recorder } from '../src/gpu/kernels.ts';
import type { LlamaModel } from '../src/model/llama.ts';
import { LinearOp } from '../src/ops/matmul.ts';
import { Rng, randomNormal } from '../src/util/random.ts';
import { UserError } from '../src/errors.ts';
import { TOL } from './tolerances.ts';
import { expectClose } from './util/compare.ts';
import { gpu } from './util/gpu.ts';

const CONTEXT = 96;

const PROMPTS = [
  'Beethoven (speaking): I was born in Bonn, in the year seventeen hundred and seventy.',
  'Man (thinking): He looks tired.',
  'I want you to act like Ludwig van Beethoven. Location: Coffee Shop - Afternoon. Status: chatting with a man from the 21st century about music, his deafness and Vienna.',
];

/** How one sequence is fed: its prompt, the sizes of its prefill chunks, and how it samples. */
interface SeqPlan {
  slot: number;
  prompt: number[];
  /** Chunk sizes, cycled (each at most the engine's prefillChunk). */
  chunks: number[];
  newTokens: number;
  temperature: number;
  penalty: number;
  wantLogits?: boolean;
  /** Steps to wait before the first chunk (to interleave sequences differently). */
  startStep?: number;
  /** The sampler's seed (default: 100 + the plan's index). */
  seed?: number;
}

interface SeqRun {
  /** The next-token distributions: after the prompt, then after each fed-back token. */
  probs: Float32Array[];
  logits: Float32Array[];
  /** The sampled tokens (greedy: argmax; else top-p 0.9 with a seeded coin). */
  tokens: number[];
}

/**
 * Runs the plans through the engine, one step at a time, as a scheduler would: every sequence past
 * its prompt decodes each step; one chunk of one prompt (the first unfinished, in plan order) is
 * prefilled per step.
 */
async function runEngine(engine: BatchEngine, plans: SeqPlan[]): Promise<SeqRun[]> {
  const runs: SeqRun[] = plans.map(() => ({ probs: [], logits: [], tokens: [] }));
  const prefilled = plans.map(() => 0);
  const chunkNo = plans.map(() => 0);
  const rngs = plans.map((p, i) => new Rng(p.seed ?? 100 + i));
  const sampling = (i: number): RowSampling => {
    const p = plans[i];
    const context = [...p.prompt, ...runs[i].tokens];
    return { invTemperature: 1 / p.temperature, penalty: p.penalty, seen: p.penalty === 1 ? undefined : distinctIds(context), wantLogits: p.wantLogits ?? false };
  };
  const take = (i: number, out: EngineOutput) => {
    expect(out.slot).toBe(plans[i].slot);
    const r = runs[i];
    r.probs.push(out.probs);
    if (out.logits) r.logits.push(out.logits);
    const coin = rngs[i].uniform();
    r.tokens.push(plans[i].temperature === 1 && plans[i].penalty === 1 ? argmax(out.probs) : sampleTopP(out.probs, 0.9, coin));
  };
  for (let step = 0; ; step++) {
    const decoding = plans.map((_, i) => i).filter((i) => prefilled[i] === plans[i].prompt.length && runs[i].tokens.length < plans[i].newTokens);
    const filling = plans.findIndex((p, i) => prefilled[i] < p.prompt.length && step >= (p.startStep ?? 0));
    if (decoding.length === 0 && filling < 0 && plans.every((p, i) => prefilled[i] === p.prompt.length)) break;
    const work: EngineStep = {
      decode: decoding.map((i) => {
        const p = plans[i];
        const pos = p.prompt.length + runs[i].tokens.length - 1;
        return { slot: p.slot, id: runs[i].tokens[runs[i].tokens.length - 1], pos, sampling: sampling(i) };
      }),
    };
    if (filling >= 0) {
      const p = plans[filling];
      const size = Math.min(p.chunks[chunkNo[filling]++ % p.chunks.length], p.prompt.length - prefilled[filling]);
      const last = prefilled[filling] + size === p.prompt.length;
      work.prefill = { slot: p.slot, ids: p.prompt.slice(prefilled[filling], prefilled[filling] + size), pos0: prefilled[filling], sampling: last ? sampling(filling) : undefined };
      prefilled[filling] += size;
    }
    const outs = await engine.step(work);
    expect(outs.length).toBe(decoding.length + (work.prefill?.sampling ? 1 : 0));
    decoding.forEach((i, j) => take(i, outs[j]));
    if (work.prefill?.sampling) take(filling, outs[outs.length - 1]);
  }
  return runs;
}

describe.skipIf(!gpu)('BatchEngine on weights/tiny', () => {
  let tokenizer: Tokenizer;
  const models: Partial<Record<'f32' | 'bf16', LlamaModel>> = {};
  const model = async (dtype: 'f32' | 'bf16') => (models[dtype] ??= await loadLlamaModel(gpu!, 'weights/tiny', dtype));
  beforeAll(async () => {
    tokenizer = await Tokenizer.load('weights/tiny/tokenizer.model');
  });
  afterAll(() => {
    for (const m of Object.values(models)) m?.destroy();
  });
  const prompts = () => PROMPTS.map((p) => tokenizer.encode(p, { bos: true }));

  it('LinearOp: the one-row configuration gives the same bits as the general one, row by row', async () => {
    // The engine relies on it: a sequence's matmul rows must not depend on how many rows a step has.
    const g = gpu!;
    for (const dtype of ['f32', 'bf16'] as const) {
      const m = await model(dtype);
      for (const name of ['lm_head.weight', 'model.layers.1.mlp.down_proj.weight', 'model.layers.2.self_attn.v_proj.weight']) {
        const w = m.weight(name);
        const [N, K, M] = [w.entry.rowsTotal, w.entry.cols, 19];
        const x = createStorageFrom(g, 'x', randomNormal(M * K, N + K));
        const [yMany, yOne] = [createStorage(g, 'y.many', M * N * 4), createStorage(g, 'y.one', M * N * 4)];
        const [many, one] = [await LinearOp.create(g, w, x, yMany, false), await LinearOp.create(g, w, x, yOne, false)];
        const rec = new Recorder(g);
        many.record(rec, { rows: M });
        for (let r = 0; r < M; r++) one.record(rec, { rows: 1, inRow: r, outRow: r });
        rec.submit();
        expect(await readF32(g, yOne), `${dtype} ${name}`).toEqual(await readF32(g, yMany));
        for (const b of [x, yMany, yOne]) b.destroy();
      }
    }
  });

  it('three interleaved sequences (one prompt in 3 chunks) match the serial Generator, with the same greedy tokens', async () => {
    const m = await model('f32');
    const engine = await BatchEngine.create(m, { slots: 4, contextLength: CONTEXT, prefillChunk: 16 });
    const generator = await Generator.create(m, tokenizer, { contextLength: CONTEXT });
    const serial = async (ids: number[], pos0: number, invTemperature: number) =>
      (await generator.forwardRow(ids, pos0, { invTemperature, penalty: 1, wantLogits: false })).probs;
    try {
      const [a, b, c] = prompts();
      expect(c.length).toBeGreaterThan(32); // three chunks of 16
      const plans: SeqPlan[] = [
        { slot: 3, prompt: c, chunks: [16], newTokens: 10, temperature: 1, penalty: 1 },
        { slot: 0, prompt: a, chunks: [7, 16], newTokens: 10, temperature: 1, penalty: 1 },
        { slot: 2, prompt: b, chunks: [16], newTokens: 10, temperature: 1, penalty: 1, startStep: 3 },
      ];
      const runs = await runEngine(engine, plans);
      for (const [i, p] of plans.entries()) {
        const run = runs[i];
        expect(run.tokens.length).toBe(p.newTokens);
        let probs = await serial(p.prompt, 0, 1);
        for (let t = 0; t < p.newTokens; t++) {
          expectClose(run.probs[t], probs, TOL.batchVsSerial, `sequence ${i}, token ${t}`);
          expect(run.tokens[t], `sequence ${i}, token ${t}`).toBe(argmax(probs));
          if (t + 1 < p.newTokens) probs = await serial([run.tokens[t]], p.prompt.length + t, 1);
        }
      }
    } finally {
      engine.destroy();
      generator.destroy();
    }
  });

  for (const dtype of ['f32', 'bf16'] as const) {
    for (const mode of ['greedy', 'penalty 1.3, temperature 0.7'] as const) {
      it(`${dtype}, ${mode}: a sequence gets the same bits alone as among 15 others, in another slot, with other prompt chunks`, async () => {
        const m = await model(dtype);
        const engine = await BatchEngine.create(m, { slots: 16, contextLength: CONTEXT, prefillChunk: 8 });
        try {
          const [a, b, c] = prompts();
          const sample = mode === 'greedy' ? { temperature: 1, penalty: 1 } : { temperature: 0.7, penalty: 1.3, wantLogits: true };
          const x: SeqPlan = { slot: 0, prompt: c, chunks: [8], newTokens: 8, seed: 7, ...sample };
          const [alone] = await runEngine(engine, [x]);
          // 15 others (prompts a and b cut to different lengths, greedy or not) fill slots 0 .. 15
          // but 11, prefilled first so that they decode all through x's prefill and decode; x's
          // prompt comes in chunks of 5 and 3 instead of 8.
          const others: SeqPlan[] = Array.from({ length: 15 }, (_, i) => {
            const base = i % 2 ? a : b;
            return { slot: i < 11 ? i : i + 1, prompt: base.slice(0, 3 + ((i * 5) % base.length)), chunks: [8], newTokens: 12 + x.prompt.length, temperature: i % 3 ? 1 : 0.9, penalty: i % 4 ? 1 : 1.2 };
          });
          const runs = await runEngine(engine, [...others, { ...x, slot: 11, chunks: [5, 3], startStep: 0 }]);
          const among = runs[15];
          expect(among.tokens).toEqual(alone.tokens);
          expect(among.probs.length).toBe(alone.probs.length);
          alone.probs.forEach((p, t) => expect(among.probs[t], `token ${t}`).toEqual(p));
          if (sample.wantLogits) {
            expect(alone.logits.length).toBe(x.newTokens);
            alone.logits.forEach((l, t) => expect(among.logits[t], `logits of token ${t}`).toEqual(l));
          }
        } finally {
          engine.destroy();
        }
      });
    }
  }

  it('a freed slot reused by a new sequence gives the same bits as a fresh slot', async () => {
    const m = await model('f32');
    const engine = await BatchEngine.create(m, { slots: 3, contextLength: CONTEXT, prefillChunk: 16 });
    try {
      const [a, b, c] = prompts();
      // Slot 2 first holds a longer sequence (c and 20 new tokens): its rows past x's positions stay in the cache.
      await runEngine(engine, [{ slot: 2, prompt: c, chunks: [16], newTokens: 20, temperature: 1, penalty: 1 }]);
      const x = (slot: number): SeqPlan => ({ slot, prompt: a, chunks: [16], newTokens: 8, temperature: 0.8, penalty: 1.1 });
      const [reused] = await runEngine(engine, [x(2), { slot: 1, prompt: b, chunks: [16], newTokens: 4, temperature: 1, penalty: 1 }]);
      const [fresh] = await runEngine(engine, [x(0)]);
      expect(reused.tokens).toEqual(fresh.tokens);
      fresh.probs.forEach((p, t) => expect(reused.probs[t], `token ${t}`).toEqual(p));
    } finally {
      engine.destroy();
    }
  });

  it('says in one line when the KV caches or the rows do not fit one binding, and refuses a context past the model', async () => {
    const m = await model('f32');
    // weights/tiny: nKV·hd = 64 floats a token; 512 tokens are 131072 bytes a slot and layer.
    const kv = await BatchEngine.create(m, { slots: 5000, contextLength: 512, prefillChunk: 8 }).catch((e: unknown) => e);
    expect(kv).toBeInstanceOf(UserError);
    const perSlot = 512 * 64 * 4;
    const fit = Math.floor(gpu!.maxBindingBytes / perSlot);
    expect((kv as Error).message).toContain(`needs ${5000 * perSlot} bytes a layer`);
    expect((kv as Error).message).toContain(`at most ${fit} slots fit at this context`);
    expect((kv as Error).message).not.toContain('\n');
    const ctx = await BatchEngine.create(m, { slots: 2, contextLength: 513, prefillChunk: 8 }).catch((e: unknown) => e);
    expect(ctx).toBeInstanceOf(UserError);
    expect((ctx as Error).message).toContain('max_position_embeddings 512');
    // Rows: weights/tiny's widest activation is I = 384 floats, so one binding holds maxBindingBytes / 1536 rows.
    const perPass = Math.floor(gpu!.maxBindingBytes / (384 * 4));
    const rows = await BatchEngine.create(m, { slots: 2, contextLength: 16, prefillChunk: perPass }).catch((e: unknown) => e);
    expect(rows).toBeInstanceOf(UserError);
    expect((rows as Error).message).toContain(`at most ${perPass} rows`);
  });

  it('refuses steps it cannot run: a slot twice, a position past the context, a chunk too long', async () => {
    const m = await model('f32');
    const engine = await BatchEngine.create(m, { slots: 2, contextLength: 16, prefillChunk: 4 });
    const s: RowSampling = { invTemperature: 1, penalty: 1, wantLogits: false };
    try {
      await expect(engine.step({ decode: [{ slot: 0, id: 5, pos: 0, sampling: s }, { slot: 0, id: 5, pos: 1, sampling: s }] })).rejects.toThrow(/twice/);
      await expect(engine.step({ decode: [{ slot: 1, id: 5, pos: 16, sampling: s }] })).rejects.toThrow(/outside its 16-token context/);
      await expect(engine.step({ decode: [], prefill: { slot: 0, ids: [1, 2, 3, 4, 5], pos0: 0 } })).rejects.toThrow(/1 \.\. 4 allowed/);
      await expect(engine.step({ decode: [{ slot: 0, id: 5, pos: 3, sampling: s }], prefill: { slot: 0, ids: [1], pos0: 0 } })).rejects.toThrow(/both decodes and prefills/);
      expect(await engine.step({ decode: [] })).toEqual([]);
    } finally {
      engine.destroy();
    }
  });
});
