/**
 * Runs `wgpu-char train` (options declared in src/cli/train.ts): resolves the run's arguments,
 * fresh or resumed from a checkpoint, loads and splits the data, builds the GPU engine, trains and
 * prints the summary. No GPU code loads until the engine is built.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { writeFileAtomic } from '../util/atomic.ts';
import path from 'node:path';
import { UserError } from '../errors.ts';
import { loadLlamaConfig } from '../formats/hf-checkpoint.ts';
import { type LlamaConfig } from '../model/config.ts';
import { readCheckpoint, type LoadedCheckpoint } from './checkpoint.ts';
import { dataFingerprint, describeSkipped, loadTrainData, planEpoch, planRun, splitTrainEval } from './data.ts';
import type { TrainEngine } from './engine.ts';
import { Progress } from './progress.ts';
import type { TrainStepOptions } from './step.ts';
import type { TrainArgs } from './state.ts';
import { formatSummary, installSigintHandler, Trainer, type StopFlag } from './trainer.ts';

/** What `TrainStep.create` (src/train/step.ts, the GPU side) is called with (a type-only import: no GPU code loads here). */
export type TrainStepCreateOptions = TrainStepOptions;
export interface TrainStepModule {
  TrainStep: { create(o: TrainStepCreateOptions): Promise<TrainEngine & { cfg: LlamaConfig }> };
}

/** Option values as commander gives them (`data`, `out`, `log`, `resume` may be absent). */
export type TrainCliOptions = Omit<TrainArgs, 'data' | 'out' | 'log'> & {
  data?: string; out?: string; log?: string; resume?: string; progressEvery: number;
};

const ARG_KEYS: readonly (keyof TrainArgs)[] = [
  'data', 'model', 'out', 'log', 'maxLen', 'evalRatio', 'seed', 'shuffle', 'batchSize', 'gradAccum', 'epochs', 'maxSteps',
  'lr', 'weightDecay', 'warmupRatio', 'lrScheduler', 'maxGradNorm', 'dtype', 'checkpointing', 'saveEveryEpoch',
  'saveSteps',
];

/**
 * The run's arguments. Fresh run: the options. Resume: the checkpoint's arguments, overridden by
 * every option given explicitly on the command line (`explicit(key)`); the trainer then refuses
 * overrides that would change the trajectory. --log defaults to OUT/train_log.jsonl (on resume
 * into the same OUT, to the checkpoint's log).
 */
export function resolveTrainArgs(opts: TrainCliOptions, explicit: (key: string) => boolean, resume?: LoadedCheckpoint): TrainArgs {
  const merged: Record<string, unknown> = {};
  for (const k of ARG_KEYS) {
    const fromCli = (opts as Record<string, unknown>)[k];
    merged[k] = resume && !explicit(k) ? resume.state.args[k] : fromCli;
  }
  if (resume && !explicit('out') && !explicit('log')) merged.log = resume.state.args.log;
  else merged.log = opts.log ?? path.join(merged.out as string ?? '.', 'train_log.jsonl');
  if (typeof merged.data !== 'string') throw new UserError('--data is required (a prompted JSON/JSONL file)');
  if (typeof merged.out !== 'string') throw new UserError('--out is required (the run directory)');
  return merged as unknown as TrainArgs;
}

/** The GPU side (src/train/step.ts), loaded only when training. */
const loadStepModule = (): Promise<TrainStepModule> => import('./step.ts');

/**
 * The whole command: load and split the data, create the engine, train, print the summary.
 * Returns the exit code (0, or 130 after a Ctrl-C checkpoint). `loadStep` is for tests.
 */
export async function runTrainCommand(opts: TrainCliOptions, explicit: (key: string) => boolean,
  loadStep: () => Promise<TrainStepModule> = loadStepModule): Promise<number> {
  const resume = opts.resume ? readCheckpoint(opts.resume) : undefined;
  const args = resolveTrainArgs(opts, explicit, resume);
  const say = (s: string) => console.error(`wgpu-char: ${s}`);

  if (!existsSync(args.model)) throw new UserError(`${args.model}: no such model directory`);
  const tokPath = path.join(args.model, 'tokenizer.model');
  if (!existsSync(tokPath)) throw new UserError(`${tokPath}: missing (the model directory needs its sentencepiece tokenizer.model)`);
  const cfg = loadLlamaConfig(args.model);
  let maxLen = args.maxLen;
  if (maxLen > cfg.max_position_embeddings) {
    say(`--max-len ${maxLen} exceeds the model's max_position_embeddings ${cfg.max_position_embeddings}: using ${cfg.max_position_embeddings}`);
    maxLen = cfg.max_position_embeddings;
  }

  const { Tokenizer } = await import('../data/tokenizer.ts');
  const tok = await Tokenizer.load(tokPath);
  const loaded = loadTrainData(args.data, tok, maxLen);
  const skippedLine = describeSkipped(loaded, args.data, maxLen);
  if (skippedLine) say(skippedLine);
  if (loaded.samples.length === 0) throw new UserError(`${args.data}: no sample fits --max-len ${maxLen}`);
  const split = splitTrainEval(loaded.samples.length, args.evalRatio, args.seed);
  const train = split.train.map((i) => loaded.samples[i]);
  const evalSet = split.eval.map((i) => loaded.samples[i]);
  const plan = planEpoch(train.length, args.batchSize, args.gradAccum);
  const run = planRun(plan, args);
  say(`${args.data}: ${loaded.total} samples: ${train.length} train, ${evalSet.length} eval, ${loaded.skipped.length} skipped, ${loaded.truncated} truncated to ${maxLen} tokens`);
  say(`${plan.microBatches} micro-batches of ${args.batchSize} per epoch → ${plan.stepsPerEpoch} steps of ${args.gradAccum}` +
    `${plan.leftover > 0 ? ` (the epoch's last step also takes the ${plan.leftover} leftover micro-batch${plan.leftover > 1 ? 'es' : ''})` : ''}` +
    `${plan.microBatches < args.gradAccum ? ` (fewer than --grad-accum: one step of ${plan.microBatches})` : ''}; ` +
    `${run.totalSteps} steps over ${run.epochs} epoch(s), warmup ${run.warmupSteps}, ${args.lrScheduler} to lr ${args.lr}`);
  if (resume) say(`resuming ${resume.dir} at step ${resume.state.step}`);

  const data = { train, eval: evalSet, fingerprint: dataFingerprint([...train, ...evalSet]) };
  Trainer.check({ args, data, resume }); // before the (slow) engine set-up

  const longest = Math.max(...train.map((s) => s.ids.length), ...evalSet.map((s) => s.ids.length));
  const mod = await loadStep();
  const engine = await mod.TrainStep.create({
    modelDir: args.model,
    dtype: args.dtype,
    maxLen: longest,
    maxBatch: args.batchSize,
    checkpointing: args.checkpointing,
    weightDecay: args.weightDecay,
    maxGradNorm: args.maxGradNorm,
    beta1: 0.9,
    beta2: 0.999,
    eps: 1e-8,
  });
  // Written once the model loaded, so a bad --model leaves OUT untouched.
  if (evalSet.length > 0) {
    // The held-out samples, so that `wgpu-char eval --data OUT/eval_data.jsonl --model OUT` reproduces the logged eval loss.
    mkdirSync(args.out, { recursive: true });
    writeFileAtomic(path.join(args.out, 'eval_data.jsonl'), split.eval.map((i) => JSON.stringify(loaded.texts[i]) + '\n').join(''));
  }
  const gpu = (engine as { gpu?: import('../gpu/device.ts').Gpu }).gpu; // absent in the tests' CPU fake
  if (gpu) {
    const { describeGpu } = await import('../gpu/device.ts');
    say(`GPU ${describeGpu(gpu)}${gpu.report.isSoftware ? ' — software adapter (lavapipe on the CPU): expect CPU speeds' : ''}`);
  }

  const progress = new Progress(process.stderr, opts.progressEvery);
  const stop: StopFlag = { requested: false };
  const uninstall = installSigintHandler(stop, {
    onFirst: () => progress.message('wgpu-char: Ctrl-C: finishing this step, then saving a checkpoint (Ctrl-C again quits without saving)'),
    onSecond: () => {
      progress.finish();
      say('stopped without saving');
      process.exit(130);
    },
  });
  try {
    const trainer = await Trainer.create({
      args, engine, cfg: engine.cfg, data, tokenizerDir: args.model, resume, progress, stop,
    });
    const result = await trainer.run();
    console.log(formatSummary(result, args.out));
    return result.interrupted ? 130 : 0;
  } finally {
    progress.finish();
    uninstall();
  }
}
