/**
 * Learning-rate schedules of the HF Trainer (transformers ≈ 4.31, `transformers/optimization.py`),
 * which the Character-LLM training uses with `--lr_scheduler_type cosine --warmup_ratio 0.04`.
 *
 * Step indexing, precisely as HF runs it: the scheduler is a torch LambdaLR, whose constructor
 * already sets lr = base_lr · lr_lambda(0); the Trainer calls `optimizer.step()` and THEN
 * `lr_scheduler.step()`. So the k-th optimizer update (k = 0, 1, 2, ...; AdamW's step count
 * t = k + 1) uses lr_lambda(k):
 *
 *   update k uses lrAt(k)          AdamW.encodeStep(rec, t = k + 1, lrAt(k, ...))
 *
 * With warmupSteps > 0 the FIRST update therefore has lr 0 (it still updates Adam's m and v, and
 * weight decay is multiplied by lr, so the weights do not move). The lr reaches its peak at
 * update k = warmupSteps. (HF logs `learning_rate` after the scheduler step, i.e. lr_lambda(k+1)
 * next to update k's loss.)
 *
 * lr_lambda(step), with W = warmupSteps, N = totalSteps:
 *   step < W:  step / max(1, W)                                          (all kinds)
 *   cosine:    max(0, 0.5·(1 + cos(π · 2·num_cycles · progress))), num_cycles = 0.5,
 *              progress = (step − W) / max(1, N − W)
 *              (HF does not clamp progress: past N the curve would rise again; the Trainer
 *              never goes past N − 1.)
 *   constant:  1      (get_constant_schedule_with_warmup; with W = 0 it is HF's `constant`)
 *   linear:    max(0, (N − step) / max(1, N − W))   (HF's default `lr_scheduler_type`)
 */

export type ScheduleKind = 'cosine' | 'constant' | 'linear';

export interface Schedule {
  /** Peak learning rate (the Trainer's `learning_rate`; 2e-5 in the paper). */
  lr: number;
  warmupSteps: number;
  /** Optimizer updates in the whole run (`num_training_steps`). */
  totalSteps: number;
  kind: ScheduleKind;
}

/** HF's lr_lambda(step): the multiplier of the peak lr for update `step` (0-based, see the header). */
export function lrLambda(step: number, s: Omit<Schedule, 'lr'>): number {
  if (!Number.isInteger(step) || step < 0) throw new Error(`lrLambda: step must be a non-negative integer, got ${step}`);
  const w = s.warmupSteps;
  if (step < w) return step / Math.max(1, w);
  switch (s.kind) {
    case 'constant':
      return 1;
    case 'linear':
      return Math.max(0, (s.totalSteps - step) / Math.max(1, s.totalSteps - w));
    case 'cosine': {
      const numCycles = 0.5;
      const progress = (step - w) / Math.max(1, s.totalSteps - w);
      return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * numCycles * 2 * progress)));
    }
    default: {
      const never: never = s.kind;
      throw new Error(`unknown schedule kind '${String(never)}'`);
    }
  }
}

/** The learning rate of update `step` (0-based: the number of updates already applied). */
export function lrAt(step: number, s: Schedule): number {
  return s.lr * lrLambda(step, s);
}

/**
 * HF TrainingArguments.get_warmup_steps: an explicit `warmup_steps` > 0 wins, otherwise
 * ceil(total · ratio) (0.04 · 240 = 9.6 → 10 in the paper's worked example).
 */
export function warmupSteps(ratio: number, totalSteps: number, explicitSteps = 0): number {
  if (explicitSteps > 0) return explicitSteps;
  if (!(ratio >= 0 && ratio <= 1)) throw new Error(`warmup ratio must be in [0, 1], got ${ratio}`);
  return Math.ceil(totalSteps * ratio);
}
