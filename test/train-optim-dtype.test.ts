/**
 * TrainStep with bf16 Adam moments (`optimDtype: 'bf16'`) on test/fixtures/train-tiny:
 *   - stopped after step 2, its optimizer state exported (the F32 tensors a checkpoint holds) into a
 *     fresh TrainStep started from the initial weights, and continued: bit-identical weights, moments
 *     and losses to the run that did not stop (as test/train-loop.test.ts checks for the trainer);
 *   - the exported moments are bf16 values, and the m and v buffers take half the bytes of f32 ones
 *     (the full fine-tune's 18 bytes/parameter become 14);
 *   - against f32 moments: the first two losses are identical (step 1's update uses the unrounded
 *     moments), the later ones close;
 * The fixture's samples and settings are those of test/train-parity.test.ts.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { tokenizeSample, type TokenizedSample } from '../src/data/sft.ts';
import { Tokenizer } from '../src/data/tokenizer.ts';
import { readPromptedFile } from '../src/formats/prompted-file.ts';
import { TrainStep, type TrainStepOptions } from '../src/train/step.ts';
import { bf16ArrayToF32, f32ArrayToBf16 } from '../src/util/bf16.ts';
import { TOL } from './tolerances.ts';
import { expectClose } from './util/compare.ts';
import { gpu } from './util/gpu.ts';

const root = path.join(import.meta.dirname, '..');
const dir = path.join(import.meta.dirname, 'fixtures', 'train-tiny');
const S = (JSON.parse(readFileSync(path.join(dir, 'expected.json'), 'utf8')) as { settings: { lr: number; beta1: number; beta2: number; eps: number; weight_decay: number; max_grad_norm: number } }).settings;
const STEPS = 5;
const LR = 1e-3;

type Tensors = Map<string, { shape: number[]; data: Float32Array }>;
interface Run {
  losses: number[];
  weights: Tensors;
  optimizer: Tensors;
  momentBytes: number;
  /** Parameters and chunks of the model (the arenas pad each chunk to 256 bytes). */
  params: number;
  chunks: number;
  peak: number;
}

const base = (over: Partial<TrainStepOptions>): TrainStepOptions => ({
  modelDir: dir, dtype: 'bf16', maxLen: 128, maxBatch: 1, checkpointing: true, weightDecay: S.weight_decay, maxGradNorm: S.max_grad_norm,
  beta1: S.beta1, beta2: S.beta2, eps: S.eps, optimDtype: 'bf16', optimSeed: 42, ...over,
});

/** Steps [from, to] (1-based) on sample k at step k + 1, after importing `state` if given. */
async function train(samples: TokenizedSample[], opts: TrainStepOptions, from: number, to: number, state?: Tensors): Promise<Run> {
  const step = await TrainStep.create(opts);
  try {
    if (state) await step.importOptimizerState(state);
    const losses: number[] = [];
    for (let t = from; t <= to; t++) losses.push((await step.trainStep([{ samples: [samples[t - 1]] }], t, LR)).loss);
    const momentBytes = [...step.m.arenas, ...step.v.arenas].reduce((a, b) => a + b.byteLength, 0);
    const chunks = step.model.table.entries.flatMap((e) => e.chunks);
    const params = chunks.reduce((a, c) => a + c.elems, 0);
    return { losses, weights: await step.exportWeights(), optimizer: await step.exportOptimizerState(), momentBytes, params, chunks: chunks.length, peak: step.peakBytes() };
  } finally {
    step.destroy();
  }
}

const bytesOf = (m: Tensors) => [...m].map(([k, t]) => [k, Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).toString('base64')]);

describe.skipIf(!gpu)('TrainStep with bf16 Adam moments (test/fixtures/train-tiny)', () => {
  let samples: TokenizedSample[];
  let ref: Run;
  beforeAll(async () => {
    const tok = await Tokenizer.load(path.join(root, 'weights', 'tiny', 'tokenizer.model'));
    samples = readPromptedFile(path.join(dir, 'prompted.jsonl')).map((s) => tokenizeSample(tok, s, 128)!);
    tok.dispose();
    ref = await train(samples, base({}), 1, STEPS);
  });

  it('stopped after step 2 and resumed from its exported state: bit-identical losses, weights and moments', async () => {
    const first = await train(samples, base({}), 1, 2);
    // what a checkpoint stores: F32 tensors, bf16-exact for the moments
    for (const [k, t] of first.optimizer) {
      if (k.startsWith('adam_')) expect(bf16ArrayToF32(f32ArrayToBf16(t.data)), k).toEqual(t.data);
    }
    expect([...first.optimizer.values()].some((t) => t.data.some((x) => x !== 0))).toBe(true);
    const second = await train(samples, base({}), 3, STEPS, first.optimizer);
    expect([...first.losses, ...second.losses]).toEqual(ref.losses);
    expect(bytesOf(second.weights)).toEqual(bytesOf(ref.weights));
    expect(bytesOf(second.optimizer)).toEqual(bytesOf(ref.optimizer));
  });

  it('m and v take 4 bytes per parameter instead of 8; vs f32 moments: steps 1-2 identical losses, then close', async () => {
    const f32 = await train(samples, base({ optimDtype: 'f32' }), 1, STEPS);
    // 2 moments × bytes per element × parameters, plus < 256 bytes of alignment per chunk and moment
    const padding = (r: Run) => r.momentBytes - 2 * (r === f32 ? 4 : 2) * r.params;
    for (const r of [ref, f32]) expect(padding(r)).toBeGreaterThanOrEqual(0);
    for (const r of [ref, f32]) expect(padding(r)).toBeLessThan(2 * 256 * r.chunks);
    console.log(`moments: ${(ref.momentBytes / ref.params).toFixed(3)} bytes/parameter in bf16, ${(f32.momentBytes / f32.params).toFixed(3)} in f32 (${ref.params} parameters)`);
    expect(f32.peak - ref.peak).toBe(f32.momentBytes - ref.momentBytes);
    expect(ref.losses.slice(0, 2)).toEqual(f32.losses.slice(0, 2));
    // Steps 3-5 read rounded moments (≤ 2^-8 relative each): the loss moves far less than that.
    const rel = ref.losses.map((l, i) => Math.abs(l - f32.losses[i]) / f32.losses[i]);
    console.log(`bf16 vs f32 moments, loss rel. differences per step: ${rel.map((x) => x.toExponential(1)).join(' ')}`);
    expectClose(ref.losses, f32.losses, TOL.trainLossBf16MomentsVsF32, 'losses, bf16 vs f32 moments');
    expect(bytesOf(ref.weights)).not.toEqual(bytesOf(f32.weights));
  });
});
