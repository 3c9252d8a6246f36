/**
 * A frozen Linear with a LoRA adapter (src/model/lora.ts), forward and backward, built from the
 * matmul and dropout ops. With s = alpha / r and the dropout's scale folding s in (xs = s·drop(x)):
 *
 *   forward                               backward (dy = dL/dy; A, B f32, their gradients +=)
 *   y (= or +=) x·Wᵀ        (base op)     dx (= or +=) dy·W      (the layer's base backward)
 *   xs = s·dropout(x)                     dB += dyᵀ·z
 *   z  = xs·Aᵀ               [R, r]        dz  = dy·B
 *   y += z·Bᵀ                              xs  = s·dropout(x)      (recomputed: same key, same mask)
 *                                          dA += dzᵀ·xs
 *                                          dxs = dz·A;  dx += s·dropout_bwd(dxs)
 * which is PEFT's  y = x·Wᵀ + s·dropout(x)·Aᵀ·Bᵀ  and its exact gradient (dA = s·dzᵀ·drop(x)).
 * Both read rows, outRow (the K/V cache row of the base output) and key (the dropout stream).
 */
import type { GpuBuffer } from '../gpu/buffers.ts';
import type { Gpu } from '../gpu/device.ts';
import type { Recorder } from '../gpu/kernels.ts';
import { DropoutBackwardOp, DropoutOp } from './dropout.ts';
import { LinearGradInputOp, LinearGradWeightOp, LinearOp } from './matmul.ts';
import type { ModelOp, OpCall, WeightRef } from './op.ts';

/** An adapter's two tensors (as weights, or as their gradients). */
export interface AdapterRefs {
  a: WeightRef;
  b: WeightRef;
}

/** The dropout of one module: probability, the LoRA scale alpha / r, and which mask (layer · 8 + module). */
export interface LoraDropout {
  p: number;
  scale: number;
  salt: number;
}

/** Scratch shared by every LoRA module of a step: xs/dxs [R, max in], dz [R, r]. */
export interface LoraScratch {
  xs: GpuBuffer;
  dxs: GpuBuffer;
  dz: GpuBuffer;
}

export class LoraLinearOp implements ModelOp {
  private constructor(private readonly base: LinearOp, private readonly drop: DropoutOp, private readonly down: LinearOp, private readonly up: LinearOp) {}

  /** `z` [R, r] keeps xs·Aᵀ for the backward; `xs` is scratch. */
  static async create(gpu: Gpu, base: LinearOp, adapter: AdapterRefs, dropout: LoraDropout, x: GpuBuffer, y: GpuBuffer, z: GpuBuffer, xs: GpuBuffer): Promise<LoraLinearOp> {
    const inFeatures = adapter.a.entry.cols;
    return new LoraLinearOp(
      base,
      await DropoutOp.create(gpu, { width: inFeatures, ...dropout }, x, xs),
      await LinearOp.create(gpu, adapter.a, xs, z, false),
      await LinearOp.create(gpu, adapter.b, z, y, true),
    );
  }

  record(rec: Recorder, call: OpCall): void {
    if ((call.inRow ?? 0) !== 0) throw new Error('LoRA linear: inputs start at row 0');
    this.base.record(rec, call);
    this.recordSaved(rec, call);
    this.up.record(rec, { rows: call.rows, outRow: call.outRow });
  }

  /** z = s·dropout(x)·Aᵀ only: what the backward reads (a recompute that stops before this projection). */
  recordSaved(rec: Recorder, call: OpCall): void {
    this.drop.record(rec, { rows: call.rows, key: call.key });
    this.down.record(rec, { rows: call.rows });
  }
}

export class LoraLinearBackwardOp implements ModelOp {
  private constructor(
    private readonly dB: LinearGradWeightOp,
    private readonly dz: LinearGradInputOp,
    private readonly drop: DropoutOp,
    private readonly dA: LinearGradWeightOp,
    private readonly dxs: LinearGradInputOp,
    private readonly dropBack: DropoutBackwardOp,
  ) {}

  /** dy: the gradient of the module's output; x, z: the forward's input and saved z; dx: += the input's gradient. */
  static async create(gpu: Gpu, adapter: AdapterRefs, grad: AdapterRefs, dropout: LoraDropout, s: LoraScratch, dy: GpuBuffer, x: GpuBuffer, z: GpuBuffer, dx: GpuBuffer): Promise<LoraLinearBackwardOp> {
    const width = adapter.a.entry.cols;
    return new LoraLinearBackwardOp(
      await LinearGradWeightOp.create(gpu, grad.b, dy, z),
      await LinearGradInputOp.create(gpu, adapter.b, dy, s.dz, false),
      await DropoutOp.create(gpu, { width, ...dropout }, x, s.xs),
      await LinearGradWeightOp.create(gpu, grad.a, s.dz, s.xs),
      await LinearGradInputOp.create(gpu, adapter.a, s.dz, s.dxs, false),
      await DropoutBackwardOp.create(gpu, { width, ...dropout }, s.dxs, dx),
    );
  }

  record(rec: Recorder, call: OpCall): void {
    const rows: OpCall = { rows: call.rows };
    this.dB.record(rec, rows);
    this.dz.record(rec, rows);
    this.drop.record(rec, { rows: call.rows, key: call.key });
    this.dA.record(rec, rows);
    this.dxs.record(rec, rows);
    this.dropBack.record(rec, { rows: call.rows, key: call.key });
  }
}
