// Training data for `wgpu-char train`: loading/skipping, the seeded split, epoch orders and the
// step plan against the HF Trainer's formula, worked with the Character-LLM training's settings (98/2
// split, 8 ranks, batch 2, accumulation 4, 10 epochs, warmup ratio 0.04) on 1,600 samples: 1,568
// train, 196 per rank, 98 micro-batches and 24 steps per epoch, 240 steps, 10 warmup.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../src/errors.ts';
import { tokenizeSample } from '../src/data/sft.ts';
import { Tokenizer } from '../src/data/tokenizer.ts';
import {
  dataFingerprint, describeSkipped, epochOrder, loadTrainData, microBatchesOfStep, orderRng, planEpoch, planRun,
  splitCounts, splitTrainEval,
} from '../src/train/data.ts';
import { Rng } from '../src/util/random.ts';

let tok: Tokenizer;
let tmp: string;
beforeAll(async () => {
  tok = await Tokenizer.load('weights/tiny/tokenizer.model');
  tmp = mkdtempSync(join(tmpdir(), 'wgpu-char-train-data-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const PROMPT = 'I want you to act like Beethoven. The status of you is as follows:\nLocation: Vienna\n\n';
const samples = [
  { prompt: PROMPT, output: 'Beethoven (speaking): Good day to you.<|eot|>\nMan (speaking): Hello!<|eot|>\n' },
  { prompt: PROMPT + 'x '.repeat(200) + '\n\n', output: 'Beethoven (speaking): I do not fit.<|eot|>\n' },
  { prompt: PROMPT, output: 'Beethoven (thinking): ' + 'music '.repeat(80) + '<|eot|>\n' },
  { prompt: PROMPT, output: 'Beethoven (speaking): Short.<|eot|>\n' },
];

describe('loadTrainData', () => {
  it('tokenizes as src/data/sft.ts does, skips samples whose prompt alone fills max-len and counts truncation', () => {
    const maxLen = 64;
    const file = join(tmp, 'data.jsonl');
    writeFileSync(file, samples.map((s) => JSON.stringify(s)).join('\n') + '\n');
    const d = loadTrainData(file, tok, maxLen);
    expect(d.total).toBe(4);
    expect(d.skipped).toEqual([2]);
    expect(d.samples.length).toBe(3);
    const expected = [samples[0], samples[2], samples[3]].map((s) => tokenizeSample(tok, s, maxLen)!);
    expect(d.samples).toEqual(expected);
    expect(d.truncated).toBe(expected.filter((s) => s.truncated).length);
    expect(d.truncated).toBe(1);
    expect(d.samples.every((s) => s.ids.length <= maxLen)).toBe(true);
    expect(describeSkipped(d, file, maxLen)).toBe(`${file}: skipped 1 of 4 sample(s) whose prompt alone fills --max-len 64: #2`);
  });

  it('reads a JSON array the same way (format told by content, not extension)', () => {
    const a = join(tmp, 'arr.txt'), l = join(tmp, 'lines.json');
    writeFileSync(a, JSON.stringify(samples));
    writeFileSync(l, samples.map((s) => JSON.stringify(s)).join('\n'));
    expect(loadTrainData(a, tok, 2048)).toEqual(loadTrainData(l, tok, 2048));
    expect(loadTrainData(a, tok, 2048).skipped).toEqual([]);
  });

  it('names the file and line of a malformed sample', () => {
    const f = join(tmp, 'bad.jsonl');
    writeFileSync(f, JSON.stringify(samples[0]) + '\n{"prompt": 1}\n');
    expect(() => loadTrainData(f, tok, 2048)).toThrow(UserError);
    expect(() => loadTrainData(f, tok, 2048)).toThrow(`${f}:2:`);
  });

  it('lists at most 10 skipped samples in its message', () => {
    const d = { samples: [], texts: [], skipped: Array.from({ length: 13 }, (_, i) => i + 1), truncated: 0, total: 13 };
    expect(describeSkipped(d, 'f', 8)).toContain('#10, … (3 more)');
    expect(describeSkipped({ ...d, skipped: [] }, 'f', 8)).toBeNull();
  });
});

describe('split', () => {
  it('sizes: floor((1 − r)·N) train as the reference, at least one eval sample when r > 0 and N ≥ 2', () => {
    expect(splitCounts(1600, 0.02)).toEqual({ nTrain: 1568, nEval: 32 }); // the worked example's split
    expect(splitCounts(10, 0.02)).toEqual({ nTrain: 9, nEval: 1 });
    expect(splitCounts(2, 0.02)).toEqual({ nTrain: 1, nEval: 1 });
    expect(splitCounts(1, 0.5)).toEqual({ nTrain: 1, nEval: 0 });
    expect(splitCounts(100, 0)).toEqual({ nTrain: 100, nEval: 0 });
    expect(splitCounts(3, 0.9)).toEqual({ nTrain: 1, nEval: 2 });
    for (let n = 2; n < 300; n += 7) {
      for (const r of [0.01, 0.02, 0.1, 0.33, 0.5]) {
        const { nTrain, nEval } = splitCounts(n, r);
        expect(nTrain + nEval).toBe(n);
        expect(nEval).toBeGreaterThanOrEqual(1);
        expect(nTrain).toBeGreaterThanOrEqual(1);
        expect(nTrain).toBe(Math.max(1, Math.min(n - 1, Math.floor((1 - r) * n + 1e-9))));
      }
    }
    expect(() => splitCounts(10, 1)).toThrow(UserError);
  });

  it('is seeded, disjoint and covers every sample', () => {
    const a = splitTrainEval(257, 0.1, 42), b = splitTrainEval(257, 0.1, 42), c = splitTrainEval(257, 0.1, 43);
    expect(a).toEqual(b);
    expect(a.eval).not.toEqual(c.eval);
    const all = [...a.train, ...a.eval].sort((x, y) => x - y);
    expect(all).toEqual(Array.from({ length: 257 }, (_, i) => i));
    expect(new Set(a.train).size + new Set(a.eval).size).toBe(257);
    expect(a.eval.length).toBe(26);
    expect(a.train).toEqual([...a.train].sort((x, y) => x - y));
    // not simply the file's tail
    expect(a.eval).not.toEqual(Array.from({ length: 26 }, (_, i) => 231 + i));
  });
});

describe('epoch plan (HF Trainer counting)', () => {
  it('reproduces the worked example per rank (1568 train samples / 8 ranks = 196), batch 2, accum 4 → 98 micro-batches, 24 steps, 240 total, warmup 10', () => {
    const p = planEpoch(196, 2, 4);
    expect(p).toMatchObject({ microBatches: 98, stepsPerEpoch: 24, leftover: 2 });
    expect(planRun(p, { epochs: 10, maxSteps: 0, warmupRatio: 0.04 })).toEqual({ totalSteps: 240, warmupSteps: 10, epochs: 10 });
  });

  it('one device on the same data: 1568 train samples → 784 micro-batches, 196 steps/epoch, 1960 total, warmup ceil(78.4) = 79', () => {
    const p = planEpoch(1568, 2, 4);
    expect(p).toMatchObject({ microBatches: 784, stepsPerEpoch: 196, leftover: 0 });
    expect(planRun(p, { epochs: 10, maxSteps: 0, warmupRatio: 0.04 })).toEqual({ totalSteps: 1960, warmupSteps: 79, epochs: 10 });
  });

  it('matches HF len_dataloader = ceil(N/B), steps = max(1, len // accum) for many sizes; micro-batches cover each sample once per epoch', () => {
    for (let n = 1; n <= 40; n++) {
      for (const b of [1, 2, 3, 5]) {
        for (const a of [1, 2, 4, 7]) {
          const p = planEpoch(n, b, a);
          const hfLen = Math.ceil(n / b);
          expect(p.microBatches).toBe(hfLen);
          expect(p.stepsPerEpoch).toBe(Math.max(1, Math.floor(hfLen / a)));
          const order = Array.from({ length: n }, (_, i) => i);
          const seen: number[] = [];
          for (let s = 0; s < p.stepsPerEpoch; s++) {
            const mbs = microBatchesOfStep(order, s, p);
            const isLast = s === p.stepsPerEpoch - 1;
            expect(mbs.length).toBe(isLast ? hfLen - s * a : a);
            for (const mb of mbs) {
              expect(mb.length).toBeGreaterThanOrEqual(1);
              expect(mb.length).toBeLessThanOrEqual(b);
              seen.push(...mb);
            }
          }
          expect(seen).toEqual(order);
        }
      }
    }
  });

  it('takes one step with all micro-batches when an epoch has fewer than grad-accum of them', () => {
    const p = planEpoch(5, 2, 4);
    expect(p).toMatchObject({ microBatches: 3, stepsPerEpoch: 1, leftover: 0 });
    expect(microBatchesOfStep([4, 3, 2, 1, 0], 0, p)).toEqual([[4, 3], [2, 1], [0]]);
  });

  it('--max-steps is the schedule total and runs past --epochs as HF does', () => {
    const p = planEpoch(40, 2, 4); // 20 micro-batches, 5 steps/epoch
    expect(planRun(p, { epochs: 1, maxSteps: 12, warmupRatio: 0.1 })).toEqual({ totalSteps: 12, warmupSteps: 2, epochs: 3 });
    expect(planRun(p, { epochs: 10, maxSteps: 3, warmupRatio: 0.04 })).toEqual({ totalSteps: 3, warmupSteps: 1, epochs: 1 });
    expect(planRun(p, { epochs: 3, maxSteps: 0, warmupRatio: 0 })).toEqual({ totalSteps: 15, warmupSteps: 0, epochs: 3 });
  });

  it('rejects empty training sets and bad sizes', () => {
    expect(() => planEpoch(0, 2, 4)).toThrow(UserError);
    expect(() => planEpoch(10, 0, 4)).toThrow(UserError);
    expect(() => planEpoch(10, 2, 0)).toThrow(UserError);
  });
});

describe('epoch order', () => {
  it('keeps file order with shuffle off, draws a fresh seeded permutation each epoch otherwise', () => {
    expect(epochOrder(6, false, orderRng(1))).toEqual([0, 1, 2, 3, 4, 5]);
    const r1 = orderRng(42), r2 = orderRng(42);
    const e1 = epochOrder(50, true, r1), e2 = epochOrder(50, true, r1);
    expect(e1).toEqual(epochOrder(50, true, r2));
    expect(e2).toEqual(epochOrder(50, true, r2));
    expect(e1).not.toEqual(e2);
    expect([...e1].sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    // continuing from a saved state gives the same next epoch
    const r3 = orderRng(42);
    epochOrder(50, true, r3);
    const saved = r3.getState();
    const r4 = new Rng(0);
    r4.setState(saved);
    expect(epochOrder(50, true, r4)).toEqual(e2);
    // independent of the split's stream
    expect(orderRng(42).getState()).not.toEqual(new Rng(42).getState());
  });
});

describe('dataFingerprint', () => {
  it('changes with any id or target start', () => {
    const a = [{ ids: [1, 5, 6, 2], targetStart: 2, truncated: false }];
    const f = dataFingerprint(a);
    expect(f).toMatch(/^[0-9a-f]{64}$/);
    expect(dataFingerprint([{ ...a[0], targetStart: 3 }])).not.toBe(f);
    expect(dataFingerprint([{ ...a[0], ids: [1, 5, 7, 2] }])).not.toBe(f);
    expect(dataFingerprint([{ ids: [1, 5], targetStart: 2, truncated: false }, { ids: [6, 2], targetStart: 2, truncated: false }])).not.toBe(f);
  });
});
