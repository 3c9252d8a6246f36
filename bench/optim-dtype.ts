/**
 * The accuracy cost of bf16 Adam moments (`optimDtype: 'bf16'`): the same fine-tune (same data
 * split, order, schedule and seed; the trainer's own loop, src/train/trainer.ts) with f32 moments,
 * with bf16 moments and stochastic rounding (the default), and with bf16 moments rounded to
 * nearest even (to show why stochastic), then compares the loss curves, the eval losses and the
 * final f32 master weights against the f32-moment run.
 *
 *   npx tsx bench/optim-dtype.ts [--model weights/tiny] [--tokenizer DIR (default: the model's)] [--data examples/prompted_Beethoven.jsonl]
 *     [--steps 150] [--max-len 256] [--batch 4] [--lr 1e-3] [--dtype bf16] [--eval-ratio 0.05]
 *     [--variants f32,bf16-sr,bf16-rne,bf16-sr-seed2,f32-weights]
 *
 * Variants: f32 (the reference), bf16-sr (seed 42), bf16-rne, bf16-sr-seed2 (another rounding
 * seed: the run-to-run spread stochastic rounding itself causes), f32-weights (f32 moments with
 * --dtype f32 weights instead of bf16: the size of a precision change the trainer already offers).
 * Weight differences, against the f32 run, over all parameters:
 *   moved:  ‖w − w_f32‖₂ / ‖w_f32 − w_0‖₂ (relative to how far training moved the weights)
 *   tensor: max over tensors of ‖w − w_f32‖₂ / ‖w_f32‖₂
 *   elem:   max |w − w_f32| / max |w_f32| of the element's tensor
 * Bytes per parameter of a full fine-tune (bf16 weights + f32 masters + f32 grads + m + v) are
 * printed from the allocated buffers.
 *
 * Measured on lavapipe (2 shared cores), --dtype bf16, all variants vs f32 moments:
 *   weights/tiny (1.8M, already SFT-ed on this file), defaults (200 steps, lr 1e-3): bytes/parameter
 *   18.00 → 14.00. Eval loss at steps 110 / 200: f32 2.68328 / 2.66026, bf16-sr 2.68337 / 2.66020,
 *   bf16-rne 2.68331 / 2.66029, bf16-sr-seed2 2.68327 / 2.66028, f32-weights 2.68351 / 2.66044.
 *   Per-step train loss |Δ| mean (max): sr 1.1e-4 (6.3e-4), rne 2.6e-4 (1.3e-3), sr-seed2 1.1e-4
 *   (5.6e-4), f32-weights 2.3e-4 (1.1e-3). Weights moved: sr 0.78%, rne 0.71%, sr-seed2 0.78%,
 *   f32-weights 1.09%.
 *   test/fixtures/train-tiny (202k, random init) --tokenizer weights/tiny --max-len 128 --steps 600
 *   --lr 3e-3: final eval loss f32 1.12884, bf16-sr 1.12840, bf16-sr-seed2 1.12632, f32-weights
 *   1.13146, bf16-rne 1.13237 (above f32 at each of the last 4 evals by 0.0035-0.0047; sr within
 *   ±0.0043 either side). Mean of the last 10 train losses: f32 0.68755, sr 0.68751, sr-seed2 0.68519,
 *   f32-weights 0.68739, rne 0.69086. Weights moved: sr 0.88%, sr-seed2 0.76%, f32-weights 0.75%, rne 1.10%.
 * So bf16 moments with stochastic rounding change nothing beyond the spread of changing the
 * rounding seed or the weight dtype; round-to-nearest shows a small upward bias in the loss.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Tokenizer } from '../src/data/tokenizer.ts';
import { loadLlamaConfig, loadLlamaWeightsCpu } from '../src/formats/hf-checkpoint.ts';
import { dataFingerprint, loadTrainData, splitTrainEval } from '../src/train/data.ts';
import { Progress } from '../src/train/progress.ts';
import type { TrainArgs } from '../src/train/state.ts';
import { TrainStep, type TrainStepOptions } from '../src/train/step.ts';
import { Trainer } from '../src/train/trainer.ts';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'weights/tiny' },
    tokenizer: { type: 'string' },
    data: { type: 'string', default: 'examples/prompted_Beethoven.jsonl' },
    steps: { type: 'string', default: '150' },
    'max-len': { type: 'string', default: '256' },
    batch: { type: 'string', default: '4' },
    lr: { type: 'string', default: '1e-3' },
    dtype: { type: 'string', default: 'bf16' },
    'eval-ratio': { type: 'string', default: '0.05' },
    variants: { type: 'string', default: 'f32,bf16-sr,bf16-rne,bf16-sr-seed2,f32-weights' },
  },
});

const SEED = 42;
const VARIANTS: Record<string, Partial<TrainStepOptions>> = {
  f32: { optimDtype: 'f32' },
  'bf16-sr': { optimDtype: 'bf16', optimRounding: 'stochastic', optimSeed: SEED },
  'bf16-rne': { optimDtype: 'bf16', optimRounding: 'nearest' },
  'bf16-sr-seed2': { optimDtype: 'bf16', optimRounding: 'stochastic', optimSeed: SEED + 1 },
  'f32-weights': { optimDtype: 'f32', dtype: 'f32' },
};
const names = values.variants!.split(',');
for (const n of names) if (!(n in VARIANTS)) throw new Error(`unknown variant ${n} (${Object.keys(VARIANTS).join(', ')})`);
if (names[0] !== 'f32') throw new Error('the first variant must be f32 (the reference)');

const dtype = values.dtype as 'bf16' | 'f32';
const maxLen = Number(values['max-len']);
const tmp = mkdtempSync(path.join(tmpdir(), 'wgpu-char-optim-dtype-'));
const args = (out: string, over: Partial<TrainArgs>): TrainArgs => ({
  data: values.data!, model: values.model!, out, log: path.join(out, 'train_log.jsonl'), maxLen, evalRatio: Number(values['eval-ratio']),
  seed: SEED, shuffle: true, batchSize: Number(values.batch), gradAccum: 1, epochs: 100, maxSteps: Number(values.steps), lr: Number(values.lr),
  weightDecay: 0.1, warmupRatio: 0.04, lrScheduler: 'cosine', maxGradNorm: 1.0, dtype, checkpointing: true, saveEveryEpoch: false, ...over,
});

const cfg = loadLlamaConfig(values.model!);
const tokenizerDir = values.tokenizer ?? values.model!;
const tok = await Tokenizer.load(path.join(tokenizerDir, 'tokenizer.model'));
const loaded = loadTrainData(values.data!, tok, maxLen);
tok.dispose();
const split = splitTrainEval(loaded.samples.length, Number(values['eval-ratio']), SEED);
const train = split.train.map((i) => loaded.samples[i]);
const evalSet = split.eval.map((i) => loaded.samples[i]);
const data = { train, eval: evalSet, fingerprint: dataFingerprint([...train, ...evalSet]) };
const longest = Math.max(...loaded.samples.map((s) => s.ids.length));
const initial = loadLlamaWeightsCpu(values.model!, cfg, { dtype: 'f32' });
console.log(`model ${values.model} (${[...initial.values()].reduce((a, t) => a + t.data.length, 0)} parameters), --dtype ${dtype}; ${values.data}: ${train.length} train / ${evalSet.length} eval samples (≤ ${maxLen} tokens); ` +
  `${values.steps} steps of batch ${values.batch}, lr ${values.lr} cosine, warmup 0.04, wd 0.1, clip 1.0, seed ${SEED}`);

interface Outcome {
  losses: number[];
  evals: [number, number][];
  weights: Map<string, Float32Array>;
  seconds: number;
  bytesPerParam: Record<string, number>;
}

async function runVariant(name: string): Promise<Outcome> {
  const v = VARIANTS[name];
  const out = path.join(tmp, name);
  const a = args(out, { dtype: v.dtype ?? dtype });
  const engine = await TrainStep.create({
    modelDir: a.model, dtype: a.dtype, maxLen: longest, maxBatch: a.batchSize, checkpointing: a.checkpointing, weightDecay: a.weightDecay,
    maxGradNorm: a.maxGradNorm, beta1: 0.9, beta2: 0.999, eps: 1e-8, ...v,
  });
  try {
    const params = engine.model.table.entries.reduce((s, e) => s + e.chunks.reduce((t, c) => t + c.elems, 0), 0);
    const bytes = (bufs: { byteLength: number }[]) => bufs.reduce((s, b) => s + b.byteLength, 0) / params;
    const bytesPerParam = {
      weights: engine.master === engine.model.weights ? 0 : bytes(engine.model.weights.arenas),
      master: bytes(engine.master.arenas),
      grad: bytes(engine.grads.arenas),
      m: bytes(engine.m.arenas),
      v: bytes(engine.v.arenas),
    };
    const t0 = performance.now();
    const trainer = await Trainer.create({ args: a, engine, cfg, data, tokenizerDir, progress: new Progress({ write: () => true, isTTY: false }, 1000) });
    await trainer.run();
    const seconds = (performance.now() - t0) / 1000;
    const log = readFileSync(a.log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; loss?: number; eval_loss?: number });
    const weights = new Map([...(await engine.exportWeights())].map(([k, t]) => [k, t.data]));
    return {
      losses: log.filter((e) => e.loss !== undefined).map((e) => e.loss!),
      evals: log.filter((e) => e.eval_loss !== undefined).map((e) => [e.step, e.eval_loss!]),
      weights, seconds, bytesPerParam,
    };
  } finally {
    engine.destroy();
  }
}

function weightDiff(w: Map<string, Float32Array>, ref: Map<string, Float32Array>): { moved: number; tensor: number; tensorName: string; elem: number } {
  let dSq = 0;
  let moveSq = 0;
  let tensor = 0;
  let tensorName = '';
  let elem = 0;
  for (const [name, r] of ref) {
    const x = w.get(name)!;
    const w0 = initial.get(name)!.data;
    let tdSq = 0;
    let tSq = 0;
    let maxAbs = 0;
    let maxD = 0;
    for (let i = 0; i < r.length; i++) {
      const d = x[i] - r[i];
      tdSq += d * d;
      tSq += r[i] * r[i];
      moveSq += (r[i] - w0[i]) ** 2;
      maxAbs = Math.max(maxAbs, Math.abs(r[i]));
      maxD = Math.max(maxD, Math.abs(d));
    }
    dSq += tdSq;
    const rel = Math.sqrt(tdSq / tSq);
    if (rel > tensor) {
      tensor = rel;
      tensorName = name;
    }
    elem = Math.max(elem, maxD / maxAbs);
  }
  return { moved: Math.sqrt(dSq / moveSq), tensor, tensorName, elem };
}

const mean = (a: number[]) => a.reduce((s, x) => s + x, 0) / a.length;
const results = new Map<string, Outcome>();
try {
  for (const name of names) {
    const r = await runVariant(name);
    results.set(name, r);
    const b = r.bytesPerParam;
    const total = b.weights + b.master + b.grad + b.m + b.v;
    console.log(`${name}: ${r.seconds.toFixed(0)} s; bytes/parameter ${total.toFixed(2)} (weights ${b.weights.toFixed(2)}, master ${b.master.toFixed(2)}, grad ${b.grad.toFixed(2)}, m ${b.m.toFixed(2)}, v ${b.v.toFixed(2)})`);
  }
  const ref = results.get('f32')!;
  const n = ref.losses.length;
  const last = Math.min(10, n);
  console.log('\nvariant        final loss  mean last 10  eval losses (step: loss)                          max|Δloss| vs f32  mean|Δloss|  weights vs f32: moved   tensor (worst)   elem');
  for (const [name, r] of results) {
    const dl = r.losses.map((l, i) => Math.abs(l - ref.losses[i]));
    const evals = r.evals.map(([s, l]) => `${s}: ${l.toFixed(5)}`).join(', ');
    const w = name === 'f32' ? null : weightDiff(r.weights, ref.weights);
    console.log(
      `${name.padEnd(14)} ${r.losses[n - 1].toFixed(5).padStart(10)}  ${mean(r.losses.slice(-last)).toFixed(5).padStart(12)}  ${evals.padEnd(50)}` +
        `${name === 'f32' ? '' : `${Math.max(...dl).toExponential(2).padStart(17)}  ${mean(dl).toExponential(2).padStart(11)}  ${w!.moved.toExponential(2).padStart(20)}   ${w!.tensor.toExponential(2)} (${w!.tensorName})   ${w!.elem.toExponential(2)}`}`,
    );
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
process.exit(0);
