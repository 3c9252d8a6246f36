/**
 * The run's state as written to disk: the arguments (`TrainArgs`), the JSONL log lines
 * (`LogEntry`) and a checkpoint's trainer_state.json (`TrainerState`). The trainer (trainer.ts)
 * builds them; checkpoint.ts writes and reads them.
 */

export interface TrainArgs {
  /** --data: prompted file (JSON array or JSONL of {prompt, output}). */
  data: string;
  /** --model: HF LLaMA directory to start from (and whose tokenizer is used). */
  model: string;
  /** --out: run directory (final model, checkpoints, log, loss.svg). */
  out: string;
  /** --log: JSONL log (default OUT/train_log.jsonl). */
  log: string;
  maxLen: number;
  evalRatio: number;
  seed: number;
  shuffle: boolean;
  batchSize: number;
  gradAccum: number;
  epochs: number;
  /** 0 = no limit (epochs × steps per epoch). */
  maxSteps: number;
  lr: number;
  weightDecay: number;
  warmupRatio: number;
  lrScheduler: 'cosine' | 'constant';
  maxGradNorm: number;
  dtype: 'bf16' | 'f32';
  checkpointing: boolean;
  saveEveryEpoch: boolean;
  /** --save-steps: also write OUT/checkpoint-<step>/ every this many optimizer steps (0 = never), so a long epoch can resume. */
  saveSteps?: number;
  /** --save-total-limit: keep at most this many checkpoint-<step>/ in OUT, removing the oldest after each save, never the one resumed from (0 = all). */
  saveTotalLimit?: number;
  /** --lora-rank: train a LoRA adapter of this rank on a frozen base (absent: full fine-tuning). */
  loraRank?: number;
  /** --lora-alpha (default 2 × rank), --lora-dropout (default 0.05), --lora-targets (comma list of HF module names; default all seven projections). */
  loraAlpha?: number;
  loraDropout?: number;
  loraTargets?: string;
  /** --adapter: start from this PEFT adapter (its adapter_config.json fixes rank, alpha, dropout and targets). */
  adapter?: string;
  /** --merge: also write OUT/merged/, the base with the adapter merged in (a full HF checkpoint). */
  merge?: boolean;
  /** --optim-dtype: Adam m and v in f32 (torch's) or bf16 (stochastic rounding keyed by --seed: 4 bytes a parameter less). */
  optimDtype?: 'f32' | 'bf16';
}

/** Arguments that change the trajectory: a resumed run must use the checkpoint's values. */
export const TRAJECTORY_KEYS = [
  'maxLen', 'evalRatio', 'seed', 'shuffle', 'batchSize', 'gradAccum', 'epochs', 'maxSteps',
  'lr', 'weightDecay', 'warmupRatio', 'lrScheduler', 'maxGradNorm', 'dtype',
  'loraRank', 'loraAlpha', 'loraDropout', 'loraTargets', 'optimDtype',
] as const satisfies readonly (keyof TrainArgs)[];

/** One line of the JSONL log (trainer.ts's header shows both kinds); a checkpoint keeps them all in `log_history`. */
export type LogEntry = { step: number; epoch: number } & Record<string, number>;

/** trainer_state.json's `format` and `version`: readCheckpoint (checkpoint.ts) refuses a file with any other. */
export const STATE_FORMAT = 'wgpu-char-trainer-state';
export const STATE_VERSION = 1;

/** OUT/checkpoint-<step>/trainer_state.json: everything a bit-exact resume needs besides the tensors. */
export interface TrainerState {
  format: typeof STATE_FORMAT;
  version: typeof STATE_VERSION;
  /** Optimizer steps done. */
  step: number;
  /** 0-based index of the current epoch. */
  epoch: number;
  /** Optimizer steps done in the current epoch (= steps_per_epoch: the epoch's end-of-epoch eval is still due). */
  step_in_epoch: number;
  /** The current epoch's order (positions into the train set); null: the next epoch's order is not drawn yet. */
  epoch_order: number[] | null;
  /** Rng state of the epoch-order stream (after drawing epoch_order). */
  rng_state: number[];
  total_steps: number;
  steps_per_epoch: number;
  warmup_steps: number;
  n_train: number;
  n_eval: number;
  /** sha256 of the tokenized train+eval samples (data.ts dataFingerprint). */
  data_fingerprint: string;
  last_eval_step: number | null;
  /** Seconds spent in trainStep, all sessions. */
  train_seconds: number;
  /** Input tokens trained on, all sessions. */
  tokens_seen: number;
  log_history: LogEntry[];
  args: TrainArgs;
}

/** The `format` and `version` fields of a new state. */
export function newStateHeader(): Pick<TrainerState, 'format' | 'version'> {
  return { format: STATE_FORMAT, version: STATE_VERSION };
}
