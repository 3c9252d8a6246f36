/**
 * Global gradient L2 norm and clipping coefficient on the GPU, as torch.nn.utils.clip_grad_norm_
 * (torch 1.13, norm_type 2) computes them for the HF Trainer (`max_grad_norm`, 1.0 in the paper):
 *   total_norm = sqrt(Σ_tensors Σ_i g_i²);  clip_coef = min(max_norm / (total_norm + 1e-6), 1)
 * (torch clamps always, so a small norm gives coef exactly 1; max_norm <= 0 means "no clipping",
 * coef 1, as the Trainer skips clip_grad_norm_ when max_grad_norm is 0 or None).
 *
 * Two passes, no atomics, fixed summation order (deterministic):
 *   grad_norm_partial.wgsl, one dispatch per tensor: partial sums of squares into `partials`,
 *     tensor k owning the slots [slot_k, slot_k + ceil(n_k / (WG·PER_THREAD)));
 *   grad_norm_finalize.wgsl, one workgroup: `norm` = [total_norm, clip_coef].
 * adamw_step.wgsl reads clip_coef from `norm`, so nothing goes through the CPU: the trainer reads
 * the norm back only to log it (`read()`).
 */
import type { Gpu } from '../gpu/device.ts';
import { createStorage, readF32, type GpuBuffer } from '../gpu/buffers.ts';
import { grid1d, Op, type Recorder } from '../gpu/kernels.ts';

/** A tensor inside a buffer: `n` f32 elements starting at element `offset` (0 when omitted). */
export interface GradSlice {
  buf: GpuBuffer;
  offset?: number;
  n: number;
  /** For error messages. */
  name?: string;
}

export interface GradNormOptions {
  /** clip_grad_norm_'s max_norm; <= 0 disables clipping (clip_coef 1) but the norm is still computed. */
  maxNorm: number;
  /** grad_norm_partial.wgsl tunables: threads per workgroup (power of two) and elements per thread. */
  partialWg?: number;
  perThread?: number;
  /** grad_norm_finalize.wgsl threads (power of two). */
  finalizeWg?: number;
}

function assertPowerOfTwo(what: string, x: number): void {
  if (!Number.isInteger(x) || x < 1 || (x & (x - 1)) !== 0) throw new Error(`${what} must be a power of two, got ${x}`);
}

/** Throws unless `n` f32 elements from element `offset` fit in `buf`. */
export function assertSliceFits(what: string, buf: GpuBuffer, offset: number, n: number, bytesPerElement = 4): void {
  if (!Number.isInteger(offset) || offset < 0 || !Number.isInteger(n) || n < 0) {
    throw new Error(`${what}: offset ${offset} and n ${n} must be non-negative integers`);
  }
  const need = Math.ceil(((offset + n) * bytesPerElement) / 4) * 4;
  if (need > buf.byteLength) {
    throw new Error(`${what}: elements [${offset}, ${offset + n}) need ${need} bytes but buffer '${buf.label}' has ${buf.byteLength}`);
  }
}

export class GradNorm {
  /** [total_norm, clip_coef], f32: bind it read-only in the consumers of clip_coef. */
  readonly norm: GpuBuffer;
  readonly numPartials: number;

  private constructor(
    private readonly gpu: Gpu,
    readonly maxNorm: number,
    private readonly partials: GpuBuffer,
    private readonly partialOps: { op: Op; params: number[]; workgroups: number }[],
    private readonly finalizeOp: Op,
    norm: GpuBuffer,
    numPartials: number,
  ) {
    this.norm = norm;
    this.numPartials = numPartials;
  }

  static async create(gpu: Gpu, grads: GradSlice[], opts: GradNormOptions): Promise<GradNorm> {
    const wg = opts.partialWg ?? 256;
    const perThread = opts.perThread ?? 8;
    const finalizeWg = opts.finalizeWg ?? 256;
    assertPowerOfTwo('partialWg', wg);
    assertPowerOfTwo('finalizeWg', finalizeWg);
    if (!Number.isInteger(perThread) || perThread < 1) throw new Error(`perThread must be a positive integer, got ${perThread}`);
    const chunk = wg * perThread;
    const layout = grads.map((g) => ({ g, offset: g.offset ?? 0, workgroups: Math.ceil(g.n / chunk) }));
    let numPartials = 0;
    const slots = layout.map((l) => {
      assertSliceFits(`grad '${l.g.name ?? '?'}'`, l.g.buf, l.offset, l.g.n);
      const slot = numPartials;
      numPartials += l.workgroups;
      return slot;
    });
    const partials = createStorage(gpu, 'grad-norm:partials', Math.max(1, numPartials) * 4);
    const norm = createStorage(gpu, 'grad-norm:norm', 2 * 4);
    const partialOps = await Promise.all(
      layout.map(async (l, k) => {
        const op = await Op.create(gpu, {
          kernel: 'grad_norm_partial.wgsl',
          constants: { WG: wg, PER_THREAD: perThread },
          bindings: [l.g.buf, partials],
          params: 'uuu',
          label: `grad_norm_partial:${l.g.name ?? k}`,
        });
        return { op, params: [l.g.n, l.offset, slots[k]], workgroups: l.workgroups };
      }),
    );
    const finalizeOp = await Op.create(gpu, {
      kernel: 'grad_norm_finalize.wgsl',
      constants: { WG: finalizeWg },
      bindings: [partials, norm],
      params: 'uf',
    });
    return new GradNorm(gpu, opts.maxNorm, partials, partialOps, finalizeOp, norm, numPartials);
  }

  /** Encodes both passes: afterwards `norm` holds [total_norm, clip_coef] of the current grads. */
  encode(rec: Recorder): void {
    for (const { op, params, workgroups } of this.partialOps) {
      const [x, y] = grid1d(workgroups);
      rec.dispatch(op, params, x, y);
    }
    rec.dispatch(this.finalizeOp, [this.numPartials, this.maxNorm], 1);
  }

  /** Reads [total_norm, clip_coef] back (milliseconds: for logging, after the step was submitted). */
  async read(): Promise<{ totalNorm: number; clipCoef: number }> {
    const v = await readF32(this.gpu, this.norm, 2);
    return { totalNorm: v[0], clipCoef: v[1] };
  }

  destroy(): void {
    this.partials.destroy();
    this.norm.destroy();
  }
}
