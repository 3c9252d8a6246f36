/**
 * Runs `wgpu-char train` (options declared in src/cli/train.ts): resolves the run's arguments,
 * fresh or resumed from a checkpoint, loads and splits the data, builds the GPU engine, trains and
 * prints the summary. No GPU code loads until the engine is built.
 */
import { existsSync } from 'node:fs';
import { writeFileAtomic } from '../util/atomic.ts';
import path from 'node:path';
import { UserError } from '../errors.ts';
import { loadLlamaConfig } from '../formats/hf-checkpoint.ts';
import { type LlamaConfig } from '../model/config.ts';
import { DEFAULT_LORA_TARGETS, isLoraModule, type LoraConfig, type LoraModule } from '../model/lora.ts';
import { readPeftAdapter } from '../formats/peft.ts';
import { formatBytes } from '../util/bytes.ts';
import { listCheckpoints, readCheckpoint, type LoadedCheckpoint } from './checkpoint.ts';
import { dataFingerprint, describeSkipped, loadTrainData, planEpoch, planRun, splitTrainEval } from './data.ts';
import type { TrainEngine } from './engine.ts';
import { Progress } from './progress.ts';
import type { TrainStepOptions } from './step.ts';
import type { TrainArgs } from './state.ts';
import { formatSummary, installSigintHandler, Trainer, type StopFlag } from './trainer.ts';
import { checkOverwriteSpares, checkRunDirFree, checkTrainPaths, EVAL_DATA_FILE, lockRunDir, LOG_FILE, removeRunFiles, runDirOfResume } from './rundir.ts';

/** What `TrainStep.create` (src/train/step.ts, the GPU side) is called with (a type-only import: no GPU code loads here). */
export type TrainStepCreateOptions = TrainStepOptions;
export interface TrainStepModule {
  TrainStep: { create(o: TrainStepCreateOptions): Promise<TrainEngine & { cfg: LlamaConfig }> };
  /** The memory plan of a step with these options on this device, before anything is allocated (absent in the tests' CPU fake). */
  planTrainStep?(o: TrainStepCreateOptions): Promise<TrainStepPlan>;
}

/** Option values as commander gives them (`data`, `out`, `log`, `resume` may be absent). */
export type TrainCliOptions = Omit<TrainArgs, 'data' | 'out' | 'log'> & {
  data?: string; out?: string; log?: string; resume?: string; overwrite?: boolean; progressEvery: number; gpuMemory?: number;
};

/** What planTrainStep (src/train/step.ts) says: the total, the main roles in one phrase, and the host's free memory on a software adapter (null on a GPU). */
export interface TrainStepPlan {
  total: number;
  summary: string;
  hostFree: number | null;
}

const ARG_KEYS: readonly (keyof TrainArgs)[] = [
  'data', 'model', 'out', 'log', 'maxLen', 'evalRatio', 'seed', 'shuffle', 'batchSize', 'gradAccum', 'epochs', 'maxSteps',
  'lr', 'weightDecay', 'warmupRatio', 'lrScheduler', 'maxGradNorm', 'dtype', 'checkpointing', 'saveEveryEpoch',
  'saveSteps', 'saveTotalLimit', 'loraRank', 'loraAlpha', 'loraDropout', 'loraTargets', 'adapter', 'merge', 'optimDtype',
];

/**
 * The run's arguments. Fresh run: the options. Resume: the checkpoint's arguments, overridden by
 * every option given explicitly on the command line (`explicit(key)`); the trainer then refuses
 * overrides that would change the trajectory. --log defaults to OUT/train_log.jsonl.
 *
 * On resume, OUT is --out if given, else the run directory --resume names (the directory itself,
 * or the parent of the checkpoint-<step> directory given): never the path stored in the
 * checkpoint, so a copied or moved run writes where it is now. The log then follows OUT: the
 * checkpoint's log path when resuming in place, the same path relative to OUT when the log lay
 * inside the old run directory, else OUT/train_log.jsonl.
 */
export function resolveTrainArgs(opts: TrainCliOptions, explicit: (key: string) => boolean, resume?: LoadedCheckpoint): TrainArgs {
  const merged: Record<string, unknown> = {};
  for (const k of ARG_KEYS) {
    const fromCli = (opts as Record<string, unknown>)[k];
    merged[k] = resume && !explicit(k) ? resume.state.args[k] : fromCli;
  }
  if (resume) {
    const saved = resume.state.args;
    if (!explicit('out')) {
      const given = opts.resume ?? resume.dir;
      const runDir = runDirOfResume(given, resume.dir);
      if (runDir === null) throw new UserError(`${given}: a checkpoint outside its run directory (the name is not checkpoint-<step>); give --out for the run directory`);
      merged.out = runDir;
    }
    const out = merged.out as string;
    if (explicit('log')) merged.log = opts.log;
    else if (explicit('out') || typeof saved.out !== 'string' || typeof saved.log !== 'string') merged.log = path.join(out, LOG_FILE);
    else if (path.resolve(out) === path.resolve(saved.out)) merged.log = saved.log;
    else {
      const rel = path.relative(path.resolve(saved.out), path.resolve(saved.log));
      merged.log = rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel) ? path.join(out, rel) : path.join(out, LOG_FILE);
    }
  } else {
    merged.log = opts.log ?? path.join(merged.out as string ?? '.', LOG_FILE);
  }
  if (typeof merged.data !== 'string') throw new UserError('--data is required (a prompted JSON/JSONL file)');
  if (typeof merged.out !== 'string') throw new UserError('--out is required (the run directory)');
  return merged as unknown as TrainArgs;
}

/** The GPU side (src/train/step.ts), loaded only when training. */
const loadStepModule = async (): Promise<TrainStepModule> => ({ TrainStep: (await import('./step.ts')).TrainStep, planTrainStep: (await import('./plan.ts')).planTrainStep });

/**
 * The whole command: load and split the data, create the engine, train, print the summary.
 * Returns the exit code (0, or 130 after a Ctrl-C checkpoint). `loadStep` is for tests.
 */
export async function runTrainCommand(opts: TrainCliOptions, explicit: (key: string) => boolean,
  loadStep: () => Promise<TrainStepModule> = loadStepModule): Promise<number> {
  const resume = opts.resume ? readCheckpoint(opts.resume) : undefined;
  const args = resolveTrainArgs(opts, explicit, resume);
  const say = (s: string) => console.error(`wgpu-char: ${s}`);
  const overwrite = opts.overwrite === true;

  // Every path first (nothing is read, created or started before), then the run directory's lock.
  checkTrainPaths(args, (k) => resume !== undefined && !explicit(k));
  const tokPath = path.join(args.model, 'tokenizer.model');
  if (!existsSync(tokPath)) throw new UserError(`${tokPath}: missing (the model directory needs its sentencepiece tokenizer.model)`);
  const release = lockRunDir(args.out, say);
  // Until the trainer's own Ctrl-C handling starts (and SIGTERM throughout): stop at once. The
  // exit frees the lock (its 'exit' listener); a checkpoint being written stays a temp directory
  // that the next run removes.
  const stopNow = (signal: NodeJS.Signals) => {
    const last = listCheckpoints(args.out).at(-1);
    say(`${signal}: stopped without saving${last ? `; continue from ${last.dir} with --resume ${args.out}` : ''}`);
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.on('SIGINT', stopNow);
  process.on('SIGTERM', stopNow);
  let failed = true;
  try {
    checkRunDirFree(args, { resumeDir: resume?.dir, overwrite });
    if (overwrite) checkOverwriteSpares(args, resume?.dir);
    const code = await trainLocked(opts, explicit, args, resume, overwrite, say, loadStep, () => process.off('SIGINT', stopNow));
    failed = false;
    return code;
  } finally {
    process.off('SIGINT', stopNow);
    process.off('SIGTERM', stopNow);
    release(failed);
  }
}

/** The rest of `runTrainCommand`, with the run directory locked. */
async function trainLocked(opts: TrainCliOptions, explicit: (key: string) => boolean, args: TrainArgs, resume: LoadedCheckpoint | undefined, overwrite: boolean,
  say: (s: string) => void, loadStep: () => Promise<TrainStepModule>, dropEarlySigint: () => void): Promise<number> {
  const cfg = loadLlamaConfig(args.model);
  let maxLen = args.maxLen;
  let clampNote: string | null = null;
  if (maxLen > cfg.max_position_embeddings) {
    const origin = explicit('maxLen') ? '' : resume ? ' (the checkpoint\'s)' : ' (the default)';
    clampNote = `--max-len ${maxLen}${origin} exceeds the max_position_embeddings ${cfg.max_position_embeddings} of ${args.model}: using ${cfg.max_position_embeddings}`;
    maxLen = cfg.max_position_embeddings;
  }

  const { Tokenizer } = await import('../data/tokenizer.ts');
  const tok = await Tokenizer.load(path.join(args.model, 'tokenizer.model'));
  const loaded = loadTrainData(args.data, tok, maxLen);
  // Said once the file has been read: an unreadable input is the only line a failed run prints.
  if (clampNote) say(clampNote);
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
  if (resume) {
    const from = resume.state.args.out;
    const moved = typeof from === 'string' && path.resolve(from) !== path.resolve(args.out);
    say(`resuming ${resume.dir} at step ${resume.state.step}${moved ? `, writing into ${args.out} (the checkpoint was written in ${from})` : ''}`);
  }

  const lora = resolveLora(args, cfg, explicit, resume !== undefined);
  if (lora) say(`LoRA r ${lora.config.r}, alpha ${lora.config.alpha}, dropout ${lora.config.dropout} on ${lora.config.targets.join(', ')}${args.adapter && !resume ? `, starting from ${args.adapter}` : ''}; the base stays frozen in ${args.dtype}`);
  const data = { train, eval: evalSet, fingerprint: dataFingerprint([...train, ...evalSet]) };
  Trainer.check({ args, data, resume, overwrite }); // before the (slow) engine set-up

  const longest = Math.max(...train.map((s) => s.ids.length), ...evalSet.map((s) => s.ids.length));
  const mod = await loadStep();
  const stepOptions: TrainStepCreateOptions = {
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
    ...(lora ? { lora: { config: lora.config, seed: args.seed, initial: lora.initial } } : {}),
    optimDtype: args.optimDtype ?? 'f32',
    // The bf16 moments' stochastic rounding is keyed by the run's seed, so a resume rounds alike.
    optimSeed: args.seed,
  };
  // The plan before any allocation: said, and a run that cannot fit is refused here rather than
  // failing deep inside the allocations.
  if (mod.planTrainStep) {
    const p = await mod.planTrainStep(stepOptions);
    say(`plan: ${formatBytes(p.total)} of GPU memory (${p.summary}); \`wgpu-char plan\` shows every role`);
    const fix = `${lora ? 'lower --lora-rank' : 'use --lora-rank'}, a smaller --batch-size or --max-len${args.dtype === 'f32' ? ', or --dtype bf16' : ''}`;
    if (opts.gpuMemory !== undefined && p.total > opts.gpuMemory) {
      throw new UserError(`training needs ${formatBytes(p.total)} of GPU memory, more than --gpu-memory ${formatBytes(opts.gpuMemory)}: ${fix}`);
    }
    if (opts.gpuMemory === undefined && p.hostFree !== null && p.total > p.hostFree) {
      throw new UserError(`training needs ${formatBytes(p.total)} of GPU memory, and this software adapter's memory is the host's, ${formatBytes(p.hostFree)} free: ${fix} (or --gpu-memory to plan for another budget)`);
    }
  }
  const engine = await mod.TrainStep.create(stepOptions);
  // Written once the model loaded, so a bad --model leaves OUT untouched; --overwrite removes the
  // earlier run's files only now, when every input has been read.
  if (overwrite) {
    const removed = removeRunFiles(args.out);
    if (removed.length > 0) say(`${args.out}: --overwrite: removed the earlier run's ${removed.join(', ')}`);
  }
  const gpu = (engine as { gpu?: import('../gpu/device.ts').Gpu }).gpu; // absent in the tests' CPU fake
  if (gpu) {
    const { describeGpu } = await import('../gpu/device.ts');
    say(`GPU ${describeGpu(gpu)}${gpu.report.isSoftware ? ' — software adapter (lavapipe on the CPU): expect CPU speeds' : ''}`);
  }

  const progress = new Progress(process.stderr, opts.progressEvery);
  const stop: StopFlag = { requested: false };
  dropEarlySigint();
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
      args, engine, cfg: engine.cfg, data, tokenizerDir: args.model, resume, progress, stop, overwrite,
      adapter: lora ? { config: lora.config, baseModel: args.model, merge: args.merge === true } : undefined,
    });
    if (evalSet.length > 0) {
      // The held-out samples, so that `wgpu-char eval --data OUT/eval_data.jsonl --model OUT` reproduces the logged eval loss.
      writeFileAtomic(path.join(args.out, EVAL_DATA_FILE), split.eval.map((i) => JSON.stringify(loaded.texts[i]) + '\n').join(''));
    }
    const result = await trainer.run();
    console.log(formatSummary(result, args.out));
    return result.interrupted ? 130 : 0;
  } finally {
    progress.finish();
    uninstall();
  }
}

/**
 * The run's LoRA settings, or undefined for full fine-tuning. `--adapter DIR` reads the adapter
 * (PEFT format, checked against the base): its config fixes rank, alpha, dropout and targets, and an
 * explicit --lora-* option that disagrees is an error. Otherwise --lora-rank turns LoRA on with
 * alpha 2 × rank, dropout 0.05 and all seven projections unless given. The resolved values are
 * written back into `args`, so checkpoints carry them and a resume must match them.
 */
export function resolveLora(args: TrainArgs, cfg: LlamaConfig, explicit: (key: string) => boolean, resuming: boolean): { config: LoraConfig; initial?: ReadonlyMap<string, Float32Array> } | undefined {
  const given = (['loraAlpha', 'loraDropout', 'loraTargets', 'merge'] as const).filter((k) => args[k] !== undefined && args[k] !== false);
  if (args.loraRank === undefined && args.adapter === undefined) {
    if (given.length > 0) throw new UserError(`--${given[0].replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} needs --lora-rank or --adapter`);
    return undefined;
  }
  let config: LoraConfig;
  let initial: ReadonlyMap<string, Float32Array> | undefined;
  if (args.adapter !== undefined && !resuming) {
    const a = readPeftAdapter(args.adapter, cfg);
    config = a.config;
    initial = a.tensors;
    const clash = ([['loraRank', config.r], ['loraAlpha', config.alpha], ['loraDropout', config.dropout], ['loraTargets', config.targets.join(',')]] as const)
      .filter(([k, v]) => explicit(k) && String(args[k]) !== String(v));
    if (clash.length > 0) {
      throw new UserError(`${path.join(args.adapter, 'adapter_config.json')}: fixes ${clash.map(([k, v]) => `${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} ${v}`).join(', ')}; drop the --lora-* options that disagree`);
    }
  } else {
    const r = args.loraRank!;
    const targets = args.loraTargets === undefined ? DEFAULT_LORA_TARGETS : args.loraTargets.split(',').map((t) => t.trim());
    for (const t of targets) if (!isLoraModule(t)) throw new UserError(`--lora-targets: ${JSON.stringify(t)} is not one of ${DEFAULT_LORA_TARGETS.join(', ')}`);
    config = { r, alpha: args.loraAlpha ?? 2 * r, dropout: args.loraDropout ?? 0.05, targets: targets as LoraModule[] };
  }
  args.loraRank = config.r;
  args.loraAlpha = config.alpha;
  args.loraDropout = config.dropout;
  args.loraTargets = config.targets.join(',');
  return { config, initial };
}
