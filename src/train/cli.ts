/**
 * `wgpu-char train`: supervised fine-tuning of a LLaMA on a prompted file, with the reference
 * trainer's data handling and hyper-parameters as defaults (spec §2.4, §3; one device, so the
 * effective batch is batch × accum = 8 sequences instead of the reference's 64).
 *
 *   wgpu-char train --data prompted_Beethoven.jsonl --model weights/llama-7b --out runs/beethoven
 *   wgpu-char train --resume runs/beethoven            (latest checkpoint; or name a checkpoint-<step> dir)
 *
 * Exit codes: 0 done, 1 user error, 130 stopped by Ctrl-C after saving a checkpoint.
 */
import { type Command, InvalidArgumentError, Option } from 'commander';
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

function num(name: string, min: number, max = Infinity, minExclusive = false) {
  return (v: string) => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < min || (minExclusive && n === min) || n > max) {
      throw new InvalidArgumentError(`${name} must be a number ${minExclusive ? '>' : '≥'} ${min}${max < Infinity ? ` and ≤ ${max}` : ''}`);
    }
    return n;
  };
}
function int(name: string, min: number) {
  return (v: string) => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer ≥ ${min}`);
    return n;
  };
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

export function registerTrainCommand(program: Command): void {
  program
    .command('train')
    .description('fine-tune a LLaMA on a prompted SFT file (loss on the output only, as the paper); checkpoints, exact resume, loss.svg')
    .option('--data <file>', 'prompted file: JSON array or JSONL of {prompt, output}')
    .option('--model <dir>', 'HF LLaMA directory to start from (config.json, tokenizer.model, *.safetensors)', 'weights/tiny')
    .option('--out <dir>', 'run directory: final model, checkpoint-<step>/, train_log.jsonl, loss.svg (required unless --resume)')
    .option('--log <file>', 'JSONL log, one line per optimizer step and per eval (default OUT/train_log.jsonl)')
    .option('--max-len <n>', 'truncate samples to this many tokens (right end cut)', int('--max-len', 2), 2048)
    .option('--eval-ratio <r>', 'held-out fraction for the per-epoch eval loss (seeded split; 0 = none)', num('--eval-ratio', 0, 1, false), 0.02)
    .option('--seed <n>', 'seed of the split and of the epoch shuffles', int('--seed', 0), 42)
    .option('--no-shuffle', 'keep file order in every epoch')
    .option('--batch-size <n>', 'samples per micro-batch', int('--batch-size', 1), 2)
    .option('--grad-accum <n>', 'micro-batches per optimizer step', int('--grad-accum', 1), 4)
    .option('--epochs <n>', 'passes over the training samples', int('--epochs', 1), 10)
    .option('--max-steps <n>', 'stop after n optimizer steps; also the schedule\'s total (0 = epochs × steps per epoch)', int('--max-steps', 0), 0)
    .option('--lr <lr>', 'peak learning rate', num('--lr', 0), 2e-5)
    .option('--weight-decay <wd>', 'AdamW weight decay (not on norm weights)', num('--weight-decay', 0), 0.1)
    .option('--warmup-ratio <r>', 'linear warmup over ceil(r × total steps)', num('--warmup-ratio', 0, 1), 0.04)
    .addOption(new Option('--lr-scheduler <kind>', 'learning-rate schedule after warmup').choices(['cosine', 'constant']).default('cosine'))
    .option('--max-grad-norm <n>', 'clip the global gradient norm to this', num('--max-grad-norm', 0, Infinity, true), 1.0)
    .addOption(new Option('--dtype <dtype>', 'weights in the forward/backward: bf16 (f32 masters and accumulation) or f32').choices(['bf16', 'f32']).default('bf16'))
    .option('--checkpointing', 'gradient checkpointing: recompute activations in the backward (default)', true)
    .option('--no-checkpointing', 'keep all activations (more memory, faster)')
    .option('--save-every-epoch', 'write OUT/checkpoint-<step>/ at the end of every epoch', false)
    .option('--save-steps <n>', 'also write OUT/checkpoint-<step>/ every n optimizer steps (0 = never)', int('--save-steps', 0), 0)
    .option('--resume <dir>', 'continue exactly from a checkpoint-<step> directory, or from the latest one in a run directory')
    .option('--progress-every <n>', 'when stderr is not a TTY, print the progress line every n steps', int('--progress-every', 1), 10)
    .action(async (opts: TrainCliOptions, cmd: Command) => {
      const code = await runTrainCommand(opts, (k) => {
        const src = cmd.getOptionValueSource(k);
        return src !== undefined && src !== 'default';
      });
      if (code !== 0) process.exit(code);
    });
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
