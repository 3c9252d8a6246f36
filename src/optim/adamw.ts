/**
 * AdamW on the GPU, matching the HF Trainer's `adamw_torch` (torch.optim.AdamW, torch 1.13's
 * `_single_tensor_adamw`: the default `foreach=None` path) preceded by
 * `torch.nn.utils.clip_grad_norm_(params, max_grad_norm)`.
 *
 * One `encodeStep` encodes the whole optimizer step into the caller's Recorder (so into the same
 * command encoder as the forward and backward): grad_norm_partial per tensor, grad_norm_finalize,
 * then adamw_step per tensor, which reads clip_coef from the GPU norm buffer. No CPU round trip;
 * `readGradNorm()` afterwards reads [total_norm, clip_coef] for the log line.
 *
 * Step numbering: `encodeStep(rec, t, lr)` with t = 1, 2, ... (torch's state['step'] after its
 * increment, used in the bias corrections 1 − β^t) and lr = lrAt(t − 1) from schedule.ts (HF
 * steps the scheduler after the optimizer; see schedule.ts). Every dispatch carries its own Params
 * (the submit's uniform arena, src/gpu/uniforms.ts), so several encodeSteps may share one submit.
 *
 * Zeroing the grads is not an optimizer kernel: the trainer clears the grad buffers with
 * `encoder.clearBuffer` (or lets the first micro-batch's backward write them with `=`). The grad
 * buffers are read, not scaled in place as torch does.
 *
 * Tensors may be chunks of one big buffer: each one gives an ELEMENT offset, passed in Params
 * (binding offsets would have to be 256-byte aligned on many GPUs).
 *
 * `moments: 'bf16'` stores m and v in bf16 (packed two per u32, laid out like the bf16 weight copy)
 * with stochastic rounding driven by a hash of (seed, t, tensor, element): see adamw_step.wgsl.
 * The update math stays f32; the stored state halves (8 → 4 bytes per parameter).
 */
import type { Gpu } from '../gpu/device.ts';
import { createStorage, type GpuBuffer } from '../gpu/buffers.ts';
import { grid1d, Op, type Recorder } from '../gpu/kernels.ts';
import { assertSliceFits, GradNorm } from './clip.ts';

/** A tensor inside a buffer: a bare buffer means element offset 0. */
export type Slice = GpuBuffer | { buf: GpuBuffer; offset: number };

export interface AdamWParam {
  name: string;
  /** Elements of the tensor (or chunk). */
  n: number;
  /** Apply weight decay? The model's rule is `hfDecays` (src/model/weights.ts), carried by its parameter table. */
  decay: boolean;
  /** f32 master weights, updated in place. */
  master: Slice;
  /** f32 gradient (read only). */
  grad: Slice;
  /**
   * Adam moments, updated in place (zero-initialised by the caller for a fresh run): f32 at the
   * master's element offset, or with `moments: 'bf16'` bf16 packed two per u32 at a bf16 element
   * offset shared by m, v and bf16Copy (the kernel's word ownership follows it).
   */
  m: Slice;
  v: Slice;
  /** bf16 copy of the weights the forward reads (packed two per u32; offset in bf16 elements): rewritten every step. */
  bf16Copy?: Slice;
  /** bf16 moments' stochastic rounding: the tensor's stream number (default: its index in the list) ... */
  rngStream?: number;
  /** ... and the index of its first element within that tensor (a chunk's first element; default 0). */
  rngOffset?: number;
}

export interface AdamWOptions {
  beta1?: number; // 0.9 (torch default; HF adam_beta1)
  beta2?: number; // 0.999 (HF adam_beta2)
  eps?: number; // 1e-8 (HF adam_epsilon)
  /** Decoupled weight decay for the tensors with `decay: true` (0.1 in the paper). */
  weightDecay?: number; // 0
  /** clip_grad_norm_ max_norm (HF max_grad_norm, 1.0); <= 0 disables clipping. */
  maxGradNorm?: number; // 1.0
  /** Storage of m and v: 'f32' (torch's), or 'bf16' (update in f32, stored rounded). */
  moments?: 'f32' | 'bf16'; // 'f32'
  /** Rounding of bf16 moments: 'stochastic' (default) or 'nearest' (even; for measurements). */
  momentsRounding?: 'stochastic' | 'nearest';
  /** Seed of the stochastic rounding (u32). */
  seed?: number; // 0
  /** adamw_step.wgsl threads per workgroup. */
  wg?: number; // 256
  /** grad-norm kernel tunables, see clip.ts. */
  normPartialWg?: number;
  normPerThread?: number;
  normFinalizeWg?: number;
}

function sliceOf(s: Slice): { buf: GpuBuffer; offset: number } {
  return 'buf' in s ? s : { buf: s, offset: 0 };
}

/**
 * The f32 scalars of adamw_step.wgsl's Params after `n, offset, bf16_offset`, computed in f64 as
 * torch computes its Python-float scalars (rounded to f32 once, when written to the uniform).
 */
export function adamwStepScalars(t: number, lr: number, weightDecay: number, beta1: number, beta2: number, eps: number): number[] {
  if (!Number.isInteger(t) || t < 1) throw new Error(`AdamW step t must be an integer >= 1, got ${t}`);
  const biasCorrection1 = 1 - beta1 ** t;
  const biasCorrection2 = 1 - beta2 ** t;
  const stepSize = lr / biasCorrection1;
  return [beta1, 1 - beta1, beta2, 1 - beta2, eps, 1 - lr * weightDecay, stepSize, Math.sqrt(biasCorrection2)];
}

interface StepEntry {
  param: AdamWParam;
  op: Op;
  offset: number;
  bf16Offset: number;
  workgroups: number;
  rngStream: number;
  rngOffset: number;
}

export class AdamW {
  private constructor(
    readonly beta1: number,
    readonly beta2: number,
    readonly eps: number,
    readonly weightDecay: number,
    readonly gradNorm: GradNorm,
    private readonly entries: StepEntry[],
    private readonly dummy: GpuBuffer,
    readonly moments: 'f32' | 'bf16',
    readonly seed: number,
  ) {}

  /** Builds every Op once (pipelines, bind groups, uniforms); `params` are whatever the model allocated. */
  static async create(gpu: Gpu, params: AdamWParam[], opts: AdamWOptions = {}): Promise<AdamW> {
    const beta1 = opts.beta1 ?? 0.9;
    const beta2 = opts.beta2 ?? 0.999;
    const eps = opts.eps ?? 1e-8;
    const weightDecay = opts.weightDecay ?? 0;
    const wg = opts.wg ?? 256;
    const moments = opts.moments ?? 'f32';
    const seed = opts.seed ?? 0;
    if (moments !== 'f32' && moments !== 'bf16') throw new Error(`AdamW: moments must be 'f32' or 'bf16', got '${String(moments)}'`);
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new Error(`AdamW: seed must be a u32, got ${seed}`);
    const rounding = opts.momentsRounding ?? 'stochastic';
    if (rounding !== 'stochastic' && rounding !== 'nearest') throw new Error(`AdamW: momentsRounding must be 'stochastic' or 'nearest', got '${String(rounding)}'`);
    const names = new Set<string>();
    for (const p of params) {
      if (names.has(p.name)) throw new Error(`AdamW: parameter '${p.name}' given twice`);
      names.add(p.name);
      if (!Number.isInteger(p.n) || p.n < 1) throw new Error(`AdamW: parameter '${p.name}' has n = ${p.n}`);
      for (const key of ['master', 'grad', 'm', 'v'] as const) {
        const s = sliceOf(p[key]);
        assertSliceFits(`AdamW '${p.name}'.${key}`, s.buf, s.offset, p.n, moments === 'bf16' && (key === 'm' || key === 'v') ? 2 : 4);
      }
      for (const key of ['rngStream', 'rngOffset'] as const) {
        const x = p[key];
        if (x !== undefined && (!Number.isInteger(x) || x < 0 || x > 0xffffffff)) throw new Error(`AdamW '${p.name}': ${key} must be a u32, got ${x}`);
      }
      if ((p.rngOffset ?? 0) + p.n > 2 ** 32) throw new Error(`AdamW '${p.name}': element indices rngOffset + n exceed 2^32`);
      if (p.bf16Copy) {
        const s = sliceOf(p.bf16Copy);
        assertSliceFits(`AdamW '${p.name}'.bf16Copy`, s.buf, s.offset, p.n, 2);
      }
    }
    // The offset is shared by grad, master, m and v (one Params field): the model must lay them
    // out alike, which the llm.c-style "same offset table for params, grads and moments" gives.
    // bf16 moments share the bf16 offset (the other Params field) with the bf16 copy instead.
    for (const p of params) {
      const o = sliceOf(p.master).offset;
      for (const key of moments === 'bf16' ? (['grad'] as const) : (['grad', 'm', 'v'] as const)) {
        if (sliceOf(p[key]).offset !== o) {
          throw new Error(`AdamW '${p.name}': ${key} offset ${sliceOf(p[key]).offset} differs from master offset ${o}; grad, master, m and v must share the element offset`);
        }
      }
      if (moments === 'bf16') {
        const mo = sliceOf(p.m).offset;
        const others: [string, number][] = [['v', sliceOf(p.v).offset]];
        if (p.bf16Copy) others.push(['bf16Copy', sliceOf(p.bf16Copy).offset]);
        for (const [key, off] of others) {
          if (off !== mo) throw new Error(`AdamW '${p.name}': ${key} bf16 offset ${off} differs from m's ${mo}; bf16 m, v and bf16Copy must share the bf16 element offset`);
        }
      }
    }
    const gradNorm = await GradNorm.create(
      gpu,
      params.map((p) => ({ ...sliceOf(p.grad), n: p.n, name: p.name })),
      { maxNorm: opts.maxGradNorm ?? 1.0, partialWg: opts.normPartialWg, perThread: opts.normPerThread, finalizeWg: opts.normFinalizeWg },
    );
    // Bound in place of the bf16 copy when a tensor has none (the binding is in the layout anyway).
    const dummy = createStorage(gpu, 'adamw:no-bf16-copy', 16);
    const entries = await Promise.all(
      params.map(async (p, index): Promise<StepEntry> => {
        const offset = sliceOf(p.master).offset;
        const bf16 = p.bf16Copy ? sliceOf(p.bf16Copy) : { buf: dummy, offset: 0 };
        // The bf16 element offset that decides word ownership: the copy's, or the bf16 moments'.
        const bf16Offset = moments === 'bf16' ? sliceOf(p.m).offset : bf16.offset;
        const words = Math.ceil((bf16Offset + p.n) / 2) - Math.floor(bf16Offset / 2);
        const op = await Op.create(gpu, {
          kernel: 'adamw_step.wgsl',
          constants: {
            WG: wg,
            WRITE_BF16: p.bf16Copy !== undefined,
            MOMENTS_BF16: moments === 'bf16',
            MOMENTS_SR: rounding === 'stochastic',
          },
          bindings: [gradNorm.norm, sliceOf(p.grad).buf, sliceOf(p.master).buf, sliceOf(p.m).buf, sliceOf(p.v).buf, bf16.buf],
          params: 'uuuffffffffuuuu',
          label: `adamw_step:${p.name}`,
        });
        return { param: p, op, offset, bf16Offset, workgroups: Math.ceil(words / wg), rngStream: p.rngStream ?? index, rngOffset: p.rngOffset ?? 0 };
      }),
    );
    return new AdamW(beta1, beta2, eps, weightDecay, gradNorm, entries, dummy, moments, seed);
  }

  /**
   * Encodes one full optimizer step: grad norm + clip coefficient, then the update of every
   * tensor (and its bf16 copy). `t` is the 1-based AdamW step, `lr` this update's learning rate.
   */
  encodeStep(rec: Recorder, t: number, lr: number): void {
    const withDecay = adamwStepScalars(t, lr, this.weightDecay, this.beta1, this.beta2, this.eps);
    const noDecay = adamwStepScalars(t, lr, 0, this.beta1, this.beta2, this.eps);
    this.gradNorm.encode(rec);
    for (const e of this.entries) {
      const [x, y] = grid1d(e.workgroups);
      rec.dispatch(e.op, [e.param.n, e.offset, e.bf16Offset, ...(e.param.decay ? withDecay : noDecay), this.seed, t, e.rngStream, e.rngOffset], x, y);
    }
  }

  /** [total_norm, clip_coef] of the last submitted step (a readback: for logging only). */
  readGradNorm(): Promise<{ totalNorm: number; clipCoef: number }> {
    return this.gradNorm.read();
  }

  destroy(): void {
    this.gradNorm.destroy();
    this.dummy.destroy();
  }
}
