/**
 * The eval path (logits in row chunks + the cross-entropy kernel) against the PyTorch fixture's
 * per-sequence mean next-token loss, and the `eval` / `generate` commands end to end.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadLlamaModel } from '../src/formats/hf-checkpoint.ts';
import { SequenceScorer } from '../src/model/evaluate.ts';
import { Generator } from '../src/gen/generate.ts';
import { Tokenizer } from '../src/data/tokenizer.ts';
import { PARITY } from './tolerances.ts';
import { gpu } from './util/gpu.ts';

const fixture = path.join(import.meta.dirname, 'fixtures', 'llama-tiny');
const golden = JSON.parse(readFileSync(path.join(fixture, 'golden.json'), 'utf8')) as { input_ids: number[][]; loss: number[] };

function cli(args: string[]) {
  return spawnSync(process.execPath, ['bin/wgpu-char.js', ...args], { encoding: 'utf8', timeout: 120_000 });
}

describe.skipIf(!gpu)('eval', () => {
  it('SequenceScorer: mean NLL of every next token equals PyTorch\'s loss', async () => {
    const model = await loadLlamaModel(gpu!, fixture, 'f32');
    const scorer = await SequenceScorer.create(model, 16);
    for (let s = 0; s < golden.input_ids.length; s++) {
      const ids = golden.input_ids[s];
      const mean = (await scorer.sumNll({ ids, targetStart: 1, truncated: false })) / (ids.length - 1);
      const rel = Math.abs(mean - golden.loss[s]) / golden.loss[s];
      console.log(`eval parity seq ${s}: ours ${mean} torch ${golden.loss[s]} rel ${rel.toExponential(2)}`);
      expect(rel).toBeLessThan(PARITY.evalLossF32);
    }
  });

  it('a padded batch scores each sequence exactly as alone', async () => {
    const model = await loadLlamaModel(gpu!, fixture, 'f32');
    const scorer = await SequenceScorer.create(model, 16, 3);
    const samples = [golden.input_ids[1], golden.input_ids[0], golden.input_ids[0].slice(0, 4)].map((ids, i) => ({ ids, targetStart: 1 + i, truncated: false }));
    const batched = await scorer.sumNllBatch(samples);
    for (let i = 0; i < samples.length; i++) {
      const alone = await scorer.sumNll(samples[i]);
      expect(Math.abs(batched[i] - alone)).toBeLessThan(1e-5 * Math.abs(alone));
    }
  });

  it('a batch that does not fit one binding is scored in passes of fewer sequences, with the same sums', async () => {
    // 16 tokens × 121 (intermediate) × 4 bytes = 7744: a 8 KiB limit holds one 16-token sequence a pass.
    const small = Object.assign(Object.create(Object.getPrototypeOf(gpu!)), gpu!, { maxBindingBytes: 8192 });
    const samples = [golden.input_ids[1], golden.input_ids[0], golden.input_ids[0].slice(0, 4)].map((ids, i) => ({ ids, targetStart: 1 + i, truncated: false }));
    const whole = await SequenceScorer.create(await loadLlamaModel(gpu!, fixture, 'f32'), 16, 3);
    const split = await SequenceScorer.create(await loadLlamaModel(small, fixture, 'f32'), 16, 3);
    expect(whole.batch).toBe(3);
    expect(split.batch).toBe(1);
    const want = await whole.sumNllBatch(samples);
    for (let i = 0; i < samples.length; i++) {
      const got = (await split.sumNllBatch([samples[i]]))[0];
      expect(Math.abs(got - want[i])).toBeLessThan(1e-5 * Math.abs(want[i]));
    }
  });

  it('`wgpu-char eval --json` prints nll, ppl and the target count; a bad file is one clear line', () => {
    // Three samples of the example file keep this quick on lavapipe.
    const small = path.join(mkdtempSync(path.join(tmpdir(), 'eval-')), 'three.jsonl');
    writeFileSync(small, readFileSync('examples/prompted_Beethoven.jsonl', 'utf8').split('\n').slice(0, 3).join('\n'));
    const r = cli(['eval', '--model', 'weights/tiny', '--data', small, '--max-len', '256', '--json', '--dtype', 'f32']);
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(out.tokens).toBeGreaterThan(100);
    expect(Math.abs(out.ppl - Math.exp(out.nll))).toBeLessThan(1e-6 * out.ppl);
    const bad = cli(['eval', '--model', 'weights/tiny', '--data', 'test/fixtures/llama-tiny/config.json']);
    expect(bad.status).toBe(1);
    expect(bad.stderr.trim()).toMatch(/^wgpu-char: test\/fixtures\/llama-tiny\/config.json: item|^wgpu-char: test\/fixtures\/llama-tiny\/config.json/);
  });

  it('`wgpu-char eval` where no sample fits --max-len is an error naming the count; some skipped are counted; --max-len above the model\'s is said once', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'eval-'));
    const one = path.join(dir, 'one.jsonl');
    writeFileSync(one, '{"prompt":"Man (speaking): hi<|eot|>\\n","output":"Beethoven (speaking): hello<|eot|>"}\n');
    for (const json of [[], ['--json']]) {
      const none = cli(['eval', '--model', 'weights/tiny', '--data', one, '--max-len', '3', ...json]);
      expect({ status: none.status, stdout: none.stdout }).toEqual({ status: 1, stdout: '' });
      expect(none.stderr.split('\n').filter((l) => l.startsWith('wgpu-char: '))).toEqual([
        `wgpu-char: ${one}: no sample fits --max-len 3: the prompts of all 1 sample(s) are 3 tokens or more (BOS included), leaving no output token to score`,
      ]);
    }
    const two = path.join(dir, 'two.jsonl');
    writeFileSync(two, readFileSync(one, 'utf8') + '{"prompt":"Man (speaking): ' + 'tell me more, '.repeat(20) + '<|eot|>\\n","output":"Beethoven (speaking): no<|eot|>"}\n');
    const some = cli(['eval', '--model', 'weights/tiny', '--data', two, '--max-len', '30', '--json']);
    expect(some.status, some.stderr).toBe(0);
    expect(some.stderr).toContain('wgpu-char: skipped 1 sample(s) whose prompt alone exceeds --max-len 30');
    expect(JSON.parse(some.stdout.trim()).tokens).toBeGreaterThan(0);
    const big = cli(['eval', '--model', 'weights/tiny', '--data', one, '--max-len', '100000', '--json']);
    expect(big.status, big.stderr).toBe(0);
    expect(big.stderr.split('\n').filter((l) => l.includes('--max-len'))).toEqual(['wgpu-char: --max-len 100000 exceeds the model\'s max_position_embeddings 512: using 512']);
  });

  it('the repetition penalty is applied on the GPU before sampling: a huge one forbids repeats', async () => {
    const model = await loadLlamaModel(gpu!, 'weights/tiny', 'f32');
    const tok = await Tokenizer.load('weights/tiny/tokenizer.model');
    const gen = await Generator.create(model, tok, { contextLength: 128 });
    const base = { maxNewTokens: 30, temperature: 0, topP: 1, seed: 1, stop: [], stopOnSpeakerTag: false };
    const prompt = 'Beethoven (speaking): My music';
    const plain = await gen.generate(prompt, base);
    const penalised = await gen.generate(prompt, { ...base, repetitionPenalty: 1e4 });
    const promptIds = new Set(tok.encode(prompt, { bos: true }));
    // Greedy with a 1e4 penalty: every seen token's positive logit drops to ~0, so an unseen token wins.
    expect(new Set(penalised.tokens).size).toBe(penalised.tokens.length);
    expect(penalised.tokens.some((t) => promptIds.has(t))).toBe(false);
    expect(new Set(plain.tokens).size).toBeLessThan(plain.tokens.length); // the tiny model does loop without it
    gen.destroy();
  });

  it('Generator: prompt + new tokens fill the context exactly (serve\'s accounting); a longer prompt is cut to its room, reported once', async () => {
    const model = await loadLlamaModel(gpu!, 'weights/tiny', 'f32');
    const tok = await Tokenizer.load('weights/tiny/tokenizer.model');
    const gen = await Generator.create(model, tok, { contextLength: 32 });
    const base = { maxNewTokens: 6, temperature: 0, topP: 1, seed: 1, stop: [], stopOnSpeakerTag: false };
    const words = (n: number) => Array.from({ length: 200 }, (_, i) => `w${i}`).join(' ').split(' ').slice(0, n).join(' ');
    let n = 1;
    while (tok.encode(words(n + 1), { bos: true }).length <= 26) n++;
    const fits = words(n);
    const ids = tok.encode(fits, { bos: true });
    expect(ids.length).toBeGreaterThanOrEqual(20);
    const cuts: unknown[] = [];
    const whole = await gen.generate(fits, { ...base, maxNewTokens: 32 - ids.length, onPromptCut: (c) => cuts.push(c) });
    expect(whole.promptTokens).toBe(ids.length); // was one less: the generator kept ctx - max_new - 1 (BOS cut first)
    expect(whole.newTokens).toBe(32 - ids.length);
    expect(cuts).toEqual([]);
    const long = words(60);
    const longIds = tok.encode(long, { bos: true });
    const cut = await gen.generate(long, { ...base, onPromptCut: (c) => cuts.push(c) });
    expect(cuts).toEqual([{ total: longIds.length, kept: 26, room: 26 }]);
    expect(cut.promptTokens).toBe(26);
    gen.destroy();
  });

  it('`wgpu-char generate` is deterministic for a seed and honours --max-new-tokens', () => {
    const args = ['generate', '--model', 'weights/tiny', '--prompt', 'Beethoven (speaking):', '--max-new-tokens', '12', '--seed', '7', '--temperature', '0.8'];
    const a = cli(args);
    const b = cli(args);
    expect(a.status, a.stderr).toBe(0);
    expect(a.stdout).toBe(b.stdout);
    expect(a.stdout.trim().length).toBeGreaterThan(0);
  });
});
