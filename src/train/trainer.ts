/**
 * The training loop of `wgpu-char train`, on the host: data order, schedule, logging, evaluation,
 * checkpoints and resume. The GPU math sits behind `TrainEngine` (engine.ts).
 *
 * One optimizer step (update k = 0, 1, …; AdamW step t = k + 1; schedule.ts explains the indexing):
 *   micro-batches = microBatchesOfStep(epoch order, step in epoch)      (data.ts)
 *   engine.trainStep(micro-batches, t, lrAt(k))                          → loss, grad_norm
 *   one JSONL line in --log, the progress line
 * Per epoch: the order is drawn from the order RNG at its start; at its end the eval loss
 * (token-weighted over the held-out samples, in chunks of --batch-size) is logged and, with
 * --save-every-epoch, OUT/checkpoint-<step>/ is written. At the end: a last eval if the run stopped
 * mid-epoch (--max-steps), the final model in OUT, OUT/loss.svg.
 *
 * Resume is exact: the checkpoint holds everything the loop's future depends on (step, epoch,
 * position in the epoch, the epoch's order, the order RNG's state, the engine's optimizer state
 * and f32 master weights, which `create` hands to engine.importOptimizerState), the log file is
 * rewritten from the saved history, and arguments that change the trajectory must equal the
 * checkpoint's (`TRAJECTORY_KEYS` in state.ts).
 *
 * Stop requests (Ctrl-C, `StopFlag`): checked after each optimizer step; the run then saves
 * OUT/checkpoint-<step>/ and returns `interrupted: true` (the CLI exits with 130).
 *
 * Log lines (JSONL, one per optimizer step, plus one per evaluation):
 *   {"step":3,"epoch":0.125,"loss":2.31,"lr":1e-5,"grad_norm":0.9,"tokens":2048,"target_tokens":1800,
 *    "tokens_per_s":5120.3,"elapsed_s":1.2}
 *   {"step":24,"epoch":1,"eval_loss":2.2,"eval_tokens":900}
 * `lr` is the rate the step used (HF logs the next one); `tokens` counts input tokens (tokens_per_s
 * is based on them), `target_tokens` the positions that carry loss; tokens_per_s and elapsed_s are
 * the only fields that depend on the clock.
 */
import { mkdirSync, existsSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.ts';
import type { LlamaConfig } from '../model/config.ts';
import { lrAt, type Schedule } from '../optim/schedule.ts';
import { appendLineDurable, DiskFullError, writeFileAtomic } from '../util/atomic.ts';
import { Rng } from '../util/random.ts';
import { targetCount } from '../data/sft.ts';
import {
  LOSS_SVG_FILE, listCheckpoints, removeOldCheckpoints, removeStaleTemps, writeCheckpoint, writeFinalModel, type AdapterOutput,
  type CheckpointHooks, type LoadedCheckpoint,
} from './checkpoint.ts';
import { epochOrder, microBatchesOfStep, orderRng, planEpoch, planRun, type EpochPlan } from './data.ts';
import { MASTER_PREFIX, type MicroBatch, type TensorMapF32, type TokenizedSample, type TrainEngine } from './engine.ts';
import { renderLossSvg } from './loss-svg.ts';
import { checkRunDirFree } from './rundir.ts';
import { formatDuration, Progress } from './progress.ts';
import { newStateHeader, TRAJECTORY_KEYS, type LogEntry, type TrainArgs, type TrainerState } from './state.ts';

export interface TrainData {
  train: TokenizedSample[];
  eval: TokenizedSample[];
  /** dataFingerprint(train ++ eval). */
  fingerprint: string;
}

/** Set `requested` to stop after the current optimizer step (with a checkpoint). */
export interface StopFlag { requested: boolean }

export interface TrainerOptions {
  args: TrainArgs;
  engine: TrainEngine;
  cfg: LlamaConfig;
  data: TrainData;
  /** Directory with tokenizer.model, copied into checkpoints and the final model (the --model dir). */
  tokenizerDir: string;
  resume?: LoadedCheckpoint;
  progress?: Progress;
  /** Seconds, monotonic (default performance.now() / 1000). */
  now?: () => number;
  stop?: StopFlag;
  checkpointHooks?: CheckpointHooks;
  /** --overwrite: a fresh run may write into an OUT holding another run (the CLI removes its files first). */
  overwrite?: boolean;
  /** LoRA: the engine's weights are an adapter, saved in PEFT's format (and merged into OUT/merged/ with `merge`). */
  adapter?: AdapterOutput;
}

export interface TrainResult {
  interrupted: boolean;
  /** Checkpoint written because of the interruption (or the one already at that step). */
  checkpointDir: string | null;
  step: number;
  totalSteps: number;
  /** This session's steps and seconds in trainStep. */
  sessionSteps: number;
  sessionSeconds: number;
  /** All sessions. */
  trainSeconds: number;
  tokensSeen: number;
  finalTrainLoss: number | null;
  lastEvalLoss: number | null;
  peakBytes: number;
}

export class Trainer {
  readonly plan: EpochPlan;
  readonly schedule: Schedule;
  private readonly st: TrainerState;
  private readonly rng: Rng;
  private readonly now: () => number;
  private readonly stop: StopFlag;
  private readonly progress: Progress;
  private lastCheckpointStep: number | null = null;
  private sessionSteps = 0;
  private sessionSeconds = 0;

  private constructor(private readonly o: TrainerOptions) {
    const a = o.args;
    this.plan = planEpoch(o.data.train.length, a.batchSize, a.gradAccum);
    const run = planRun(this.plan, a);
    this.schedule = { lr: a.lr, warmupSteps: run.warmupSteps, totalSteps: run.totalSteps, kind: a.lrScheduler };
    this.now = o.now ?? (() => performance.now() / 1000);
    this.stop = o.stop ?? { requested: false };
    this.progress = o.progress ?? new Progress(process.stderr);
    if (o.resume) {
      this.st = structuredClone(o.resume.state);
      this.st.args = { ...a };
      this.rng = new Rng(0);
      this.rng.setState(this.st.rng_state);
      this.lastCheckpointStep = this.st.step;
    } else {
      this.rng = orderRng(a.seed);
      this.st = {
        ...newStateHeader(),
        step: 0, epoch: 0, step_in_epoch: 0, epoch_order: null, rng_state: this.rng.getState(),
        total_steps: run.totalSteps, steps_per_epoch: this.plan.stepsPerEpoch, warmup_steps: run.warmupSteps,
        n_train: o.data.train.length, n_eval: o.data.eval.length, data_fingerprint: o.data.fingerprint,
        last_eval_step: null, train_seconds: 0, tokens_seen: 0, log_history: [], args: { ...a },
      };
    }
  }

  /**
   * The checks `create` makes before touching the engine (the CLI runs them before building it):
   * a resume must have the checkpoint's trajectory arguments and data; a run must not write into a
   * directory holding another run (rundir.ts: model, log or checkpoints; the resumed run's own
   * directory aside) unless `overwrite`. UserError otherwise.
   */
  static check(o: Pick<TrainerOptions, 'args' | 'data' | 'resume' | 'overwrite'>): void {
    checkRunDirFree(o.args, { resumeDir: o.resume?.dir, overwrite: o.overwrite });
    if (o.resume) {
      const s = o.resume.state;
      const diffs: string[] = [];
      for (const k of TRAJECTORY_KEYS) {
        if (s.args[k] !== o.args[k]) diffs.push(`${k} ${JSON.stringify(o.args[k])} (checkpoint: ${JSON.stringify(s.args[k])})`);
      }
      if (diffs.length > 0) throw new UserError(`${o.resume.dir}: cannot resume with different settings: ${diffs.join(', ')}`);
      if (s.data_fingerprint !== o.data.fingerprint || s.n_train !== o.data.train.length || s.n_eval !== o.data.eval.length) {
        throw new UserError(`${o.resume.dir}: the data differs from the checkpoint's (file, tokenizer or --max-len changed: ` +
          `${o.data.train.length}+${o.data.eval.length} samples now, ${s.n_train}+${s.n_eval} then)`);
      }
    }
  }

  /** Runs `check`, then hands a resumed checkpoint's optimizer state (f32 masters included) to the engine. */
  static async create(o: TrainerOptions): Promise<Trainer> {
    Trainer.check(o);
    const t = new Trainer(o);
    if (o.resume) {
      if (t.st.total_steps !== t.schedule.totalSteps || t.st.steps_per_epoch !== t.plan.stepsPerEpoch) {
        throw new UserError(`${o.resume.dir}: step plan differs from the checkpoint's (${t.schedule.totalSteps} steps of ${t.plan.stepsPerEpoch} per epoch now, ` +
          `${t.st.total_steps} of ${t.st.steps_per_epoch} then)`);
      }
      await o.engine.importOptimizerState(o.resume.optimizer);
    }
    return t;
  }

  get state(): Readonly<TrainerState> {
    return this.st;
  }

  /**
   * Runs to the end (or to a stop request). A full disk ends the run with a DiskFullError that
   * also names the last complete checkpoint, which stays intact.
   */
  async run(): Promise<TrainResult> {
    try {
      return await this.runLoop();
    } catch (e) {
      if (!(e instanceof DiskFullError)) throw e;
      const last = listCheckpoints(this.o.args.out).at(-1);
      throw e.withNote(last
        ? `the last complete checkpoint ${last.dir} is intact: free some space and continue with --resume ${this.o.args.out}`
        : 'no checkpoint was written yet');
    }
  }

  private async runLoop(): Promise<TrainResult> {
    const { args } = this.o;
    const st = this.st;
    const S = this.plan.stepsPerEpoch, total = this.schedule.totalSteps;
    mkdirSync(args.out, { recursive: true });
    removeStaleTemps(args.out);
    this.prepareLog();

    for (;;) {
      if (st.epoch_order === null) {
        if (st.step >= total) break;
        st.epoch_order = epochOrder(this.o.data.train.length, args.shuffle, this.rng);
        st.step_in_epoch = 0;
      }
      while (st.step_in_epoch < S && st.step < total) {
        await this.trainOneStep();
        if (this.stop.requested && st.step < total) return this.interrupt();
        // A save step that ends the epoch or the run is saved after that epoch's (or the final) eval, below.
        if (this.saveStepDue() && st.step_in_epoch < S && st.step < total) await this.saveCheckpoint();
      }
      if (st.step_in_epoch < S) break; // --max-steps reached inside the epoch
      await this.evaluate();
      st.epoch++;
      st.step_in_epoch = 0;
      st.epoch_order = null;
      if (args.saveEveryEpoch || this.saveStepDue()) await this.saveCheckpoint();
      if (this.stop.requested && st.step < total) return this.interrupt();
    }
    if (this.o.data.eval.length > 0 && st.last_eval_step !== st.step) await this.evaluate();
    if (this.saveStepDue() && this.lastCheckpointStep !== st.step) await this.saveCheckpoint();

    const weights = await this.o.engine.exportWeights();
    await writeFinalModel(args.out, { cfg: this.o.cfg, dtype: args.dtype, weights, tokenizerDir: this.o.tokenizerDir, lossSvg: this.lossSvg(), adapter: this.o.adapter });
    this.progress.finish();
    return this.result(false, null);
  }

  /** --save-steps N: the step just done is a multiple of N. */
  private saveStepDue(): boolean {
    const every = this.o.args.saveSteps ?? 0;
    return every > 0 && this.st.step > 0 && this.st.step % every === 0;
  }

  private async trainOneStep(): Promise<void> {
    const st = this.st, { engine, data } = this.o;
    const order = st.epoch_order!;
    const mbs: MicroBatch[] = microBatchesOfStep(order, st.step_in_epoch, this.plan).map((pos) => ({ samples: pos.map((p) => data.train[p]) }));
    const tokens = mbs.reduce((a, mb) => a + mb.samples.reduce((b, s) => b + s.ids.length, 0), 0);
    const targetTokens = mbs.reduce((a, mb) => a + mb.samples.reduce((b, s) => b + targetCount(s), 0), 0);
    const lr = lrAt(st.step, this.schedule);
    const t0 = this.now();
    const r = await engine.trainStep(mbs, st.step + 1, lr);
    const dt = Math.max(1e-9, this.now() - t0);
    st.step++;
    st.step_in_epoch++;
    st.train_seconds += dt;
    st.tokens_seen += tokens;
    this.sessionSteps++;
    this.sessionSeconds += dt;
    const epoch = this.epochProgress();
    this.log({
      step: st.step, epoch, loss: r.loss, lr, grad_norm: r.gradNorm, tokens, target_tokens: targetTokens,
      tokens_per_s: tokens / dt, elapsed_s: st.train_seconds,
    });
    if (!Number.isFinite(r.loss)) this.progress.message(`wgpu-char: warning: step ${st.step}: loss is ${r.loss}`);
    const remaining = this.schedule.totalSteps - st.step;
    this.progress.update({
      step: st.step, total: this.schedule.totalSteps, epoch, loss: r.loss, lr, tokensPerS: tokens / dt,
      elapsedS: st.train_seconds, etaS: remaining * (this.sessionSeconds / this.sessionSteps),
    });
  }

  private epochProgress(): number {
    return Number((this.st.epoch + this.st.step_in_epoch / this.plan.stepsPerEpoch).toFixed(6));
  }

  private async evaluate(): Promise<void> {
    const evalSet = this.o.data.eval;
    if (evalSet.length === 0) return;
    let sum = 0, tokens = 0;
    for (let i = 0; i < evalSet.length; i += this.o.args.batchSize) {
      const r = await this.o.engine.evalLoss(evalSet.slice(i, i + this.o.args.batchSize));
      sum += r.loss * r.tokens;
      tokens += r.tokens;
    }
    const loss = tokens > 0 ? sum / tokens : NaN;
    this.st.last_eval_step = this.st.step;
    this.log({ step: this.st.step, epoch: this.epochProgress(), eval_loss: loss, eval_tokens: tokens });
    this.progress.message(`eval step ${this.st.step}  epoch ${this.epochProgress().toFixed(2)}  eval_loss ${loss.toFixed(4)}  (${tokens} tokens)`);
  }

  private log(entry: LogEntry): void {
    this.st.log_history.push(entry);
    appendLineDurable(this.o.args.log, JSON.stringify(entry));
  }

  /** Fresh run: an empty log. Resume: the log as it was at the checkpoint (later lines of a crashed run dropped). */
  private prepareLog(): void {
    mkdirSync(path.dirname(path.resolve(this.o.args.log)), { recursive: true });
    writeFileAtomic(this.o.args.log, this.st.log_history.map((e) => JSON.stringify(e) + '\n').join(''));
  }

  lossSvg(): string {
    const train: [number, number][] = [], ev: [number, number][] = [];
    for (const e of this.st.log_history) {
      if (typeof e.loss === 'number') train.push([e.step, e.loss]);
      if (typeof e.eval_loss === 'number') ev.push([e.step, e.eval_loss]);
    }
    return renderLossSvg({ train, eval: ev }, `${path.basename(path.resolve(this.o.args.out))}: loss`);
  }

  /** OUT/checkpoint-<step>/ (atomically) and OUT/loss.svg. */
  private async saveCheckpoint(): Promise<string> {
    const { args, engine } = this.o;
    const dir = path.join(args.out, `checkpoint-${this.st.step}`);
    this.st.rng_state = this.rng.getState();
    const optimizer = await engine.exportOptimizerState();
    const weights = mastersOf(optimizer) ?? await engine.exportWeights();
    const lossSvg = this.lossSvg();
    await writeCheckpoint(dir, {
      cfg: this.o.cfg, dtype: args.dtype, weights, optimizer, tokenizerDir: this.o.tokenizerDir, state: this.st, lossSvg, adapter: this.o.adapter,
    }, this.o.checkpointHooks);
    writeFileAtomic(path.join(args.out, LOSS_SVG_FILE), lossSvg);
    this.lastCheckpointStep = this.st.step;
    this.progress.message(`saved ${dir}`);
    const limit = args.saveTotalLimit ?? 0;
    const removed = removeOldCheckpoints(args.out, limit, [...(this.o.resume ? [this.o.resume.dir] : []), this.o.tokenizerDir]);
    if (removed.length > 0) this.progress.message(`removed ${removed.join(', ')} (--save-total-limit ${limit})`);
    return dir;
  }

  private async interrupt(): Promise<TrainResult> {
    const dir = this.lastCheckpointStep === this.st.step && existsSync(path.join(this.o.args.out, `checkpoint-${this.st.step}`))
      ? path.join(this.o.args.out, `checkpoint-${this.st.step}`)
      : await this.saveCheckpoint();
    this.progress.finish();
    return this.result(true, dir);
  }

  private result(interrupted: boolean, checkpointDir: string | null): TrainResult {
    const h = this.st.log_history;
    const lastOf = (k: string) => {
      for (let i = h.length - 1; i >= 0; i--) if (typeof h[i][k] === 'number') return h[i][k];
      return null;
    };
    return {
      interrupted, checkpointDir, step: this.st.step, totalSteps: this.schedule.totalSteps,
      sessionSteps: this.sessionSteps, sessionSeconds: this.sessionSeconds,
      trainSeconds: this.st.train_seconds, tokensSeen: this.st.tokens_seen,
      finalTrainLoss: lastOf('loss'), lastEvalLoss: lastOf('eval_loss'), peakBytes: this.o.engine.peakBytes(),
    };
  }
}

/** The `master.*` entries of an optimizer state as a weight map, or null when it has none (saves a second copy of the weights in host memory). */
function mastersOf(optimizer: TensorMapF32): TensorMapF32 | null {
  const out: TensorMapF32 = new Map();
  for (const [k, t] of optimizer) if (k.startsWith(MASTER_PREFIX)) out.set(k.slice(MASTER_PREFIX.length), t);
  return out.size > 0 ? out : null;
}

function formatBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  return `${n} B`;
}

/** The end-of-run summary, one fact per line. */
export function formatSummary(r: TrainResult, out: string): string {
  const tps = r.trainSeconds > 0 ? r.tokensSeen / r.trainSeconds : 0;
  return [
    r.interrupted ? `interrupted at step ${r.step}/${r.totalSteps}; resume with --resume ${r.checkpointDir}` : `done: ${r.step}/${r.totalSteps} steps, model in ${out}`,
    `steps this session: ${r.sessionSteps} in ${formatDuration(r.sessionSeconds)} (train time, all sessions: ${formatDuration(r.trainSeconds)})`,
    `final train loss:   ${r.finalTrainLoss === null ? '-' : r.finalTrainLoss.toFixed(4)}`,
    `last eval loss:     ${r.lastEvalLoss === null ? '-' : r.lastEvalLoss.toFixed(4)}`,
    `throughput:         ${Math.round(tps)} tokens/s (${r.tokensSeen} input tokens)`,
    `peak GPU memory:    ${formatBytes(r.peakBytes)}`,
  ].join('\n');
}

/**
 * Ctrl-C: the first SIGINT sets `stop.requested` (the run finishes its step, saves a checkpoint and
 * ends), a second one calls `onSecond` (the CLI exits at once, without saving). Returns the uninstaller.
 */
export function installSigintHandler(stop: StopFlag, cb: { onFirst(): void; onSecond(): void },
  proc: Pick<NodeJS.Process, 'on' | 'off'> = process): () => void {
  const handler = () => {
    if (!stop.requested) {
      stop.requested = true;
      cb.onFirst();
    } else {
      cb.onSecond();
    }
  };
  proc.on('SIGINT', handler);
  return () => {
    proc.off('SIGINT', handler);
  };
}
