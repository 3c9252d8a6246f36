// The training loop with a deterministic CPU fake engine (test/train-fake-engine.ts): log lines,
// step/epoch bookkeeping, evaluation, checkpoints, bit-exact resume, crash safety of checkpoint
// writes, and the stop (Ctrl-C) path.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../src/errors.ts';
import { loadLlamaConfig } from '../src/formats/hf-checkpoint.ts';
import { llamaWeightSpecs } from '../src/model/weights.ts';
import { loadLlamaWeightsCpu } from '../src/formats/hf-checkpoint.ts';
import { SafetensorsFile } from '../src/formats/safetensors.ts';
import { lrAt } from '../src/optim/schedule.ts';
import { f32ArrayToBf16, bf16ArrayToF32 } from '../src/util/bf16.ts';
import { readCheckpoint, removeStaleTemps, writeCheckpoint } from '../src/train/checkpoint.ts';
import { MASTER_PREFIX, type TensorMapF32 } from '../src/train/engine.ts';
import { Progress } from '../src/train/progress.ts';
import type { TrainArgs } from '../src/train/state.ts';
import { formatSummary, Trainer, type StopFlag, type TrainData } from '../src/train/trainer.ts';
import { FakeEngine, synthData, TINY_CFG } from './train-fake-engine.ts';

const TOKENIZER_DIR = 'weights/tiny';
let tmp: string;
let counter = 0;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'wgpu-char-train-loop-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const newOut = () => join(tmp, `run${counter++}`);

const quiet = () => new Progress({ write: () => true, isTTY: false }, 1000);

// 23 samples: 19 train + 4 eval; batch 2, accum 3 → 10 micro-batches, 3 steps per epoch (the last
// one also takes the 10th micro-batch), 3 epochs → 9 steps, warmup ceil(0.2 · 9) = 2.
const DATA: TrainData = synthData(23, 4);
function args(out: string, over: Partial<TrainArgs> = {}): TrainArgs {
  return {
    data: 'synthetic', model: TOKENIZER_DIR, out, log: join(out, 'train_log.jsonl'), maxLen: 64, evalRatio: 0.15, seed: 42,
    shuffle: true, batchSize: 2, gradAccum: 3, epochs: 3, maxSteps: 0, lr: 0.05, weightDecay: 0.1, warmupRatio: 0.2,
    lrScheduler: 'cosine', maxGradNorm: 1.0, dtype: 'f32', checkpointing: true, saveEveryEpoch: false, ...over,
  };
}

interface RunOpts { engine?: FakeEngine; stopAt?: number; resumeFrom?: string; data?: TrainData; hooks?: Parameters<typeof Trainer.create>[0]['checkpointHooks'] }
async function run(a: TrainArgs, o: RunOpts = {}) {
  const resume = o.resumeFrom ? readCheckpoint(o.resumeFrom) : undefined;
  // On resume the engine starts from other weights (as the real one starts from --model): the
  // checkpoint's optimizer.safetensors (master.* included) must restore everything.
  const engine = o.engine ?? FakeEngine.fromSeed(resume ? 99 : 7);
  const stop: StopFlag = { requested: false };
  if (o.stopAt !== undefined) engine.onStep = (s) => { if (s === o.stopAt) stop.requested = true; };
  const trainer = await Trainer.create({
    args: a, engine, cfg: TINY_CFG, data: o.data ?? DATA, tokenizerDir: TOKENIZER_DIR, resume, progress: quiet(), stop, checkpointHooks: o.hooks,
  });
  const result = await trainer.run();
  return { engine, trainer, result };
}

/** The steps of the checkpoint-<step> directories in `out`, ascending. */
function checkpointSteps(out: string): number[] {
  return readdirSync(out).map((f) => /^checkpoint-(\d+)$/.exec(f)).filter((m) => m !== null).map((m) => Number(m[1])).sort((x, y) => x - y);
}

const TIMING = new Set(['tokens_per_s', 'elapsed_s']);
function logLines(file: string): Record<string, number>[] {
  return readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
}
const stripTiming = (lines: Record<string, number>[]) =>
  lines.map((e) => Object.fromEntries(Object.entries(e).filter(([k]) => !TIMING.has(k))));
const bytesOf = (m: TensorMapF32) => [...m].map(([k, t]) => [k, Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).toString('base64')]);

describe('training loop', () => {
  let out: string;
  let ref: Awaited<ReturnType<typeof run>>;
  beforeAll(async () => {
    out = newOut();
    ref = await run(args(out));
  });

  it('writes one log line per optimizer step with step, epoch, loss, lr, grad_norm, tokens/s, plus eval lines at epoch ends', () => {
    const lines = logLines(join(out, 'train_log.jsonl'));
    const steps = lines.filter((e) => 'loss' in e), evals = lines.filter((e) => 'eval_loss' in e);
    expect(steps.map((e) => e.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(evals.map((e) => [e.step, e.epoch])).toEqual([[3, 1], [6, 2], [9, 3]]);
    expect(lines.map((e) => ('eval_loss' in e ? `e${e.step}` : `s${e.step}`)).join(' ')).toBe('s1 s2 s3 e3 s4 s5 s6 e6 s7 s8 s9 e9');
    const sched = { lr: 0.05, warmupSteps: 2, totalSteps: 9, kind: 'cosine' as const };
    steps.forEach((e, k) => {
      for (const key of ['step', 'epoch', 'loss', 'lr', 'grad_norm', 'tokens', 'target_tokens', 'tokens_per_s', 'elapsed_s']) expect(e).toHaveProperty(key);
      expect(e.lr).toBe(lrAt(k, sched));
      expect(e.epoch).toBeCloseTo((k + 1) / 3, 5);
      expect(Number.isFinite(e.loss) && e.loss > 0).toBe(true);
      expect(e.tokens_per_s).toBeGreaterThan(0);
    });
    expect(steps[0].lr).toBe(0); // HF: the first update of a warmup has lr 0
    expect(steps[2].lr).toBe(0.05); // peak at update k = warmup
    for (const e of evals) expect(e.eval_tokens).toBe(DATA.eval.reduce((a, s) => a + s.ids.length - s.targetStart, 0));
  });

  it('calls the engine with 1-based step numbers, the scheduled lr, and every train sample once per epoch', () => {
    const calls = ref.engine.calls;
    expect(calls.map((c) => c.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(calls.map((c) => c.microBatches.length)).toEqual([3, 3, 4, 3, 3, 4, 3, 3, 4]);
    const names = DATA.train.map((s) => s.ids[1]).sort();
    const orders: number[][] = [];
    for (let e = 0; e < 3; e++) {
      const seen = calls.slice(3 * e, 3 * e + 3).flatMap((c) => c.microBatches.flat());
      expect([...seen].sort()).toEqual(names);
      orders.push(seen);
    }
    expect(orders[0]).not.toEqual(orders[1]); // shuffled per epoch
    expect(orders[0]).not.toEqual(names);
  });

  it('leaves the final model (HF layout + tokenizer) and loss.svg in OUT', () => {
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.model', 'loss.svg', 'train_log.jsonl']) expect(existsSync(join(out, f))).toBe(true);
    expect(readFileSync(join(out, 'tokenizer.model'))).toEqual(readFileSync(join(TOKENIZER_DIR, 'tokenizer.model')));
    expect(loadLlamaConfig(out).torch_dtype).toBe('float32');
    const saved = loadLlamaWeightsCpu(out, TINY_CFG, { dtype: 'f32' });
    return ref.engine.exportWeights().then((w) => {
      for (const [k, t] of w) expect(saved.get(k)!.data).toEqual(t.data);
      const svg = readFileSync(join(out, 'loss.svg'), 'utf8');
      expect(svg).toContain('class="train"');
      expect(svg).toContain('class="eval"');
    });
  });

  it('summarises steps, losses, throughput and peak memory', () => {
    const r = ref.result;
    expect(r).toMatchObject({ interrupted: false, step: 9, totalSteps: 9, sessionSteps: 9, peakBytes: 12345678 });
    const s = formatSummary(r, out);
    expect(s).toContain('done: 9/9 steps');
    expect(s).toContain(`final train loss:   ${r.finalTrainLoss!.toFixed(4)}`);
    expect(s).toContain(`last eval loss:     ${r.lastEvalLoss!.toFixed(4)}`);
    expect(s).toContain('tokens/s');
    expect(s).toContain('11.8 MiB');
  });

  it('keeps file order with shuffle off', async () => {
    const r = await run(args(newOut(), { shuffle: false, epochs: 1 }));
    expect(r.engine.calls.flatMap((c) => c.microBatches.flat())).toEqual(DATA.train.map((s) => s.ids[1]));
  });

  it('--max-steps stops inside an epoch, evaluates at the end, and sets the schedule total', async () => {
    const o = newOut();
    const r = await run(args(o, { maxSteps: 4, epochs: 1 }));
    const lines = logLines(join(o, 'train_log.jsonl'));
    expect(lines.map((e) => ('eval_loss' in e ? `e${e.step}` : `s${e.step}`)).join(' ')).toBe('s1 s2 s3 e3 s4 e4');
    expect(r.trainer.schedule).toMatchObject({ totalSteps: 4, warmupSteps: 1 });
    expect(lines.at(-1)!.epoch).toBeCloseTo(4 / 3, 5);
  });

  it('--max-steps past the epochs runs further epochs (HF overrides num_train_epochs)', async () => {
    const r = await run(args(newOut(), { maxSteps: 7, epochs: 1 }));
    expect(r.engine.calls.length).toBe(7);
  });

  it('runs without an eval set', async () => {
    const o = newOut();
    const data = { ...DATA, eval: [], fingerprint: 'x' };
    const r = await run(args(o), { data });
    expect(logLines(join(o, 'train_log.jsonl')).some((e) => 'eval_loss' in e)).toBe(false);
    expect(r.result.lastEvalLoss).toBeNull();
  });
});

describe('checkpoints and resume', () => {
  for (const dtype of ['f32', 'bf16'] as const) {
    describe(`dtype ${dtype}`, () => {
      let refOut: string;
      let refWeights: TensorMapF32;
      let refLog: Record<string, number>[];
      beforeAll(async () => {
        refOut = newOut();
        const r = await run(args(refOut, { dtype, saveEveryEpoch: true }));
        refWeights = await r.engine.exportWeights();
        refLog = logLines(join(refOut, 'train_log.jsonl'));
      });

      for (const k of [1, 2, 3, 5]) {
        it(`stopped after step ${k} and resumed: identical log, weights and optimizer state (bit for bit)`, async () => {
          const o = newOut();
          const a = args(o, { dtype, saveEveryEpoch: true });
          const first = await run(a, { stopAt: k });
          expect(first.result).toMatchObject({ interrupted: true, step: k, checkpointDir: join(o, `checkpoint-${k}`) });
          expect(first.engine.calls.length).toBe(k);
          const ck = readCheckpoint(o); // the run dir: takes the latest checkpoint
          expect(ck.dir).toBe(join(o, `checkpoint-${k}`));
          expect(ck.state.step).toBe(k);
          const second = await run(a, { resumeFrom: o });
          expect(second.engine.calls.map((c) => c.step)).toEqual(Array.from({ length: 9 - k }, (_, i) => k + 1 + i));
          expect(bytesOf(await second.engine.exportWeights())).toEqual(bytesOf(refWeights));
          expect(stripTiming(logLines(join(o, 'train_log.jsonl')))).toEqual(stripTiming(refLog));
          expect(readFileSync(join(o, 'model.safetensors')).equals(readFileSync(join(refOut, 'model.safetensors')))).toBe(true);
          // the per-epoch checkpoints of both runs hold the same state (timings aside)
          for (const step of [3, 6, 9]) {
            const x = readCheckpoint(join(o, `checkpoint-${step}`)), y = readCheckpoint(join(refOut, `checkpoint-${step}`));
            expect(bytesOf(x.optimizer)).toEqual(bytesOf(y.optimizer));
            const norm = (s: typeof x.state) => ({ ...s, args: { ...s.args, out: '', log: '' }, train_seconds: 0, log_history: stripTiming(s.log_history) });
            expect(norm(x.state)).toEqual(norm(y.state));
          }
        });
      }

      it('resumes twice in a row and from a per-epoch checkpoint', async () => {
        const o = newOut();
        const a = args(o, { dtype, saveEveryEpoch: true });
        await run(a, { stopAt: 2 });
        await run(a, { resumeFrom: o, stopAt: 4 });
        const last = await run(a, { resumeFrom: join(o, 'checkpoint-4') });
        expect(bytesOf(await last.engine.exportWeights())).toEqual(bytesOf(refWeights));
        const o2 = newOut();
        const fromEpoch = await run(args(o2, { dtype }), { resumeFrom: join(refOut, 'checkpoint-6') });
        expect(fromEpoch.engine.calls.map((c) => c.step)).toEqual([7, 8, 9]);
        expect(bytesOf(await fromEpoch.engine.exportWeights())).toEqual(bytesOf(refWeights));
        expect(stripTiming(logLines(join(o2, 'train_log.jsonl')))).toEqual(stripTiming(refLog));
      });

      it(`checkpoint layout: HF model in ${dtype}, tokenizer, optimizer state with f32 masters, trainer state`, () => {
        const dir = join(refOut, 'checkpoint-3');
        expect(readdirSync(dir).sort()).toEqual(['config.json', 'loss.svg', 'model.safetensors', 'optimizer.safetensors', 'tokenizer.model', 'trainer_state.json']);
        const model = SafetensorsFile.open(join(dir, 'model.safetensors'));
        expect(model.info('model.embed_tokens.weight').dtype).toBe(dtype === 'f32' ? 'F32' : 'BF16');
        model.close();
        const ck = readCheckpoint(dir);
        const masters = [...ck.optimizer.keys()].filter((key) => key.startsWith(MASTER_PREFIX));
        expect(masters.length).toBe(llamaWeightSpecs(TINY_CFG).length);
        expect(ck.optimizer.has('exp_avg.model.norm.weight')).toBe(true);
        expect(ck.state).toMatchObject({ step: 3, epoch: 1, step_in_epoch: 0, epoch_order: null, total_steps: 9, steps_per_epoch: 3, warmup_steps: 2, n_train: 19, n_eval: 4, last_eval_step: 3 });
        expect(ck.state.log_history.length).toBe(4);
        if (dtype === 'bf16') {
          // the bf16 file alone is lossy: the masters are what makes the resume exact
          const m = ck.optimizer.get(MASTER_PREFIX + 'model.embed_tokens.weight')!.data;
          const rounded = bf16ArrayToF32(f32ArrayToBf16(m));
          expect(rounded).not.toEqual(m);
          expect(loadLlamaWeightsCpu(dir, TINY_CFG, { dtype: 'f32' }).get('model.embed_tokens.weight')!.data).toEqual(rounded);
        }
      });
    });
  }

  it('uses the engine\'s own master.* entries when it exports them (no second weight copy) and resumes exactly', async () => {
    const ref = await run(args(newOut(), { dtype: 'bf16' }));
    const o = newOut();
    const engine = FakeEngine.fromSeed(7, { withMasters: true });
    let exported = 0;
    const orig = engine.exportWeights.bind(engine);
    engine.exportWeights = () => { exported++; return orig(); };
    await run(args(o, { dtype: 'bf16' }), { engine, stopAt: 4 });
    expect(exported).toBe(0);
    const ck = readCheckpoint(o);
    expect([...ck.optimizer.keys()].filter((k) => k.startsWith(MASTER_PREFIX)).length).toBe(llamaWeightSpecs(TINY_CFG).length);
    const resumed = await run(args(o, { dtype: 'bf16' }), { resumeFrom: o, engine: FakeEngine.fromSeed(99, { withMasters: true }) });
    expect(bytesOf(await resumed.engine.exportWeights())).toEqual(bytesOf(await ref.engine.exportWeights()));
    expect(readFileSync(join(o, 'model.safetensors')).equals(readFileSync(join(ref.trainer.state.args.out, 'model.safetensors')))).toBe(true);
  });

  it('--save-steps writes mid-epoch checkpoints that resume to the same result', async () => {
    const ref = newOut();
    const r = await run(args(ref));
    const o = newOut();
    await run(args(o, { saveSteps: 2 }));
    // 9 steps (3 per epoch): checkpoints at 2, 4, 6 (an epoch's last step) and 8.
    expect(checkpointSteps(o)).toEqual([2, 4, 6, 8]);
    const resumed = newOut();
    const second = await run(args(resumed, { saveSteps: 2 }), { resumeFrom: join(o, 'checkpoint-4') });
    expect(second.engine.calls.map((c) => c.step)).toEqual([5, 6, 7, 8, 9]);
    expect(bytesOf(await second.engine.exportWeights())).toEqual(bytesOf(await r.engine.exportWeights()));
  });

  it('--save-steps saves every multiple of N, also a step that ends an epoch and the last step (issue 9, item 4)', async () => {
    const o = newOut();
    await run(args(o, { saveSteps: 3 })); // 3 steps per epoch: every save step ends an epoch, step 9 ends the run
    expect(checkpointSteps(o)).toEqual([3, 6, 9]);
    // the epoch-end save comes after the epoch's eval: the same state as --save-every-epoch's
    const every = newOut();
    await run(args(every, { saveEveryEpoch: true }));
    for (const step of [3, 6, 9]) {
      const x = readCheckpoint(join(o, `checkpoint-${step}`)).state, y = readCheckpoint(join(every, `checkpoint-${step}`)).state;
      const norm = (s: typeof x) => ({ ...s, args: { ...s.args, out: '', log: '', saveSteps: 0, saveEveryEpoch: false }, train_seconds: 0, log_history: stripTiming(s.log_history) });
      expect(norm(x)).toEqual(norm(y));
    }
    // both options on the same step: one save
    const both = newOut();
    let commits = 0;
    await run(args(both, { saveSteps: 3, saveEveryEpoch: true }), { hooks: { beforeCommit: () => { commits++; } } });
    expect(commits).toBe(3);
    // the case: one sample, one step per epoch, --max-steps 2 --epochs 2 --save-steps 1
    const one = newOut();
    await run(args(one, { saveSteps: 1, epochs: 2, maxSteps: 2, evalRatio: 0 }), { data: synthData(1, 0) });
    expect(checkpointSteps(one)).toEqual([1, 2]);
    // resuming from the epoch-end one gives the uninterrupted result
    const resumed = await run(args(newOut(), { saveSteps: 3 }), { resumeFrom: join(o, 'checkpoint-3') });
    expect(bytesOf(await resumed.engine.exportWeights())).toEqual(bytesOf(await (await run(args(newOut()))).engine.exportWeights()));
  });

  it('--save-total-limit keeps the newest N checkpoints, never the one resumed from (issue 9, item 16)', async () => {
    const o = newOut();
    await run(args(o, { saveSteps: 1, saveTotalLimit: 2 }), { stopAt: 5 });
    expect(checkpointSteps(o)).toEqual([4, 5]);
    expect(readCheckpoint(o).state.args.saveTotalLimit).toBe(2);
    // resumed from checkpoint-4 with a limit of 1: checkpoint-4 stays, the others rotate
    await run(args(o, { saveSteps: 1, saveTotalLimit: 1 }), { resumeFrom: join(o, 'checkpoint-4'), stopAt: 7 });
    expect(checkpointSteps(o)).toEqual([4, 7]);
    await run(args(o, { saveSteps: 1, saveTotalLimit: 1 }), { resumeFrom: o });
    expect(checkpointSteps(o)).toEqual([7, 9]);
    // 0 (the default): keep all
    const all = newOut();
    await run(args(all, { saveSteps: 2, saveTotalLimit: 0 }));
    expect(checkpointSteps(all)).toEqual([2, 4, 6, 8]);
    expect(readdirSync(o).filter((f) => f.includes('.tmp') || f.includes('.old'))).toEqual([]);
  });

  it('a mid-epoch checkpoint records the position and the order of its epoch', async () => {
    const o = newOut();
    const r = await run(args(o), { stopAt: 4 });
    const st = readCheckpoint(r.result.checkpointDir!).state;
    expect(st).toMatchObject({ step: 4, epoch: 1, step_in_epoch: 1 });
    expect([...st.epoch_order!].sort((x, y) => x - y)).toEqual(Array.from({ length: 19 }, (_, i) => i));
    expect(st.rng_state.length).toBe(4);
    expect(st.args.lr).toBe(0.05);
  });

  it('refuses to resume with settings that change the trajectory, or with other data', async () => {
    const o = newOut();
    await run(args(o), { stopAt: 2 });
    await expect(run(args(o, { lr: 0.01 }), { resumeFrom: o })).rejects.toThrow(/different settings: lr 0.01 \(checkpoint: 0.05\)/);
    await expect(run(args(o, { seed: 1, batchSize: 3 }), { resumeFrom: o })).rejects.toThrow(UserError);
    await expect(run(args(o), { resumeFrom: o, data: synthData(23, 4, 6) })).rejects.toThrow(/data differs/);
    // a fresh run does not silently mix with an earlier run's checkpoints
    await expect(run(args(o))).rejects.toThrow(/already holds .*checkpoint-2.*--resume/);
    // allowed: non-trajectory settings (here: gradient checkpointing off)
    const ok = await run(args(o, { checkpointing: false }), { resumeFrom: o });
    expect(ok.result.step).toBe(9);
  });

  it('a crash while saving leaves the previous checkpoint valid and no half-written one', async () => {
    const o = newOut();
    const a = args(o, { saveEveryEpoch: true });
    const boom = new Error('simulated crash before rename');
    await expect(run(a, { hooks: { beforeCommit: (t) => { if (t.includes('checkpoint-6')) throw boom; } } })).rejects.toBe(boom);
    expect(readdirSync(o).filter((f) => f.startsWith('checkpoint-'))).toEqual(['checkpoint-3']);
    const ck = readCheckpoint(o);
    expect(ck.dir).toBe(join(o, 'checkpoint-3'));
    // ...and it resumes to the same result as a run that never crashed
    const ref = await run(args(newOut()));
    const resumed = await run(a, { resumeFrom: o });
    expect(bytesOf(await resumed.engine.exportWeights())).toEqual(bytesOf(await ref.engine.exportWeights()));
  });

  it('a failure while gathering the state (e.g. a GPU readback) writes nothing under the final name', async () => {
    const o = newOut();
    const engine = FakeEngine.fromSeed(7);
    let n = 0;
    const orig = engine.exportOptimizerState.bind(engine);
    engine.exportOptimizerState = async () => {
      if (++n === 2) throw new Error('readback failed');
      return orig();
    };
    await expect(run(args(o, { saveEveryEpoch: true }), { engine })).rejects.toThrow('readback failed');
    expect(readdirSync(o).filter((f) => f.startsWith('checkpoint-'))).toEqual(['checkpoint-3']);
  });

  it('replaces a checkpoint of the same name atomically and ignores/removes temp dirs of dead processes', async () => {
    const prepared = newOut();
    await run(args(prepared, { saveEveryEpoch: true, epochs: 1 }));
    const src = readCheckpoint(join(prepared, 'checkpoint-3'));
    const o = newOut();
    const dir = join(o, 'checkpoint-3');
    const contents = (loss: string) => ({
      cfg: TINY_CFG, dtype: 'f32' as const, weights: loadLlamaWeightsCpu(src.dir, TINY_CFG, { dtype: 'f32' }), optimizer: src.optimizer,
      tokenizerDir: TOKENIZER_DIR, state: src.state, lossSvg: loss,
    });
    await writeCheckpoint(dir, contents('<svg>1</svg>'));
    await writeCheckpoint(dir, contents('<svg>2</svg>'));
    expect(readFileSync(join(dir, 'loss.svg'), 'utf8')).toBe('<svg>2</svg>');
    expect(readdirSync(o)).toEqual(['checkpoint-3']);
    // a crashed writer's leftovers (pid 2^22 + 1 is above Linux's pid_max default range in practice)
    const dead = join(o, 'checkpoint-6.4194305.tmp');
    mkdirSync(dead);
    expect(readCheckpoint(o).dir).toBe(dir);
    expect(removeStaleTemps(o)).toEqual(['checkpoint-6.4194305.tmp']);
    expect(readdirSync(o)).toEqual(['checkpoint-3']);
    // killed between moving the old checkpoint aside and renaming the new one in: the old one comes back
    const { renameSync } = await import('node:fs');
    renameSync(dir, join(o, 'checkpoint-3.4194305.old'));
    mkdirSync(join(o, 'checkpoint-3.4194305.tmp'));
    expect(removeStaleTemps(o).sort()).toEqual(['checkpoint-3.4194305.old', 'checkpoint-3.4194305.tmp']);
    expect(readdirSync(o)).toEqual(['checkpoint-3']);
    expect(readCheckpoint(o).state.step).toBe(3);
  });
});
