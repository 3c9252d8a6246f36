/**
 * LoRA's scaled dropout (kernels/dropout_fwd.wgsl, dropout_bwd.wgsl; reference
 * src/reference/dropout.ts): out = x·(alpha/r)/(1 − p) on kept elements, 0 on dropped ones, the
 * mask a hash of (key, element): nothing stored, the backward recomputes it. Both read rows and key.
 */
import type { GpuBuffer } from '../gpu/buffers.ts';
import type { Gpu } from '../gpu/device.ts';
import { grid1d, Op, type Recorder } from '../gpu/kernels.ts';
import { dropBelowOf, pcgHash } from '../util/hash.ts';
import { ELEMENTWISE_WG, type ModelOp, type OpCall } from './op.ts';

/**
 * The dropout key of one call: the run's seed and the call's step, micro-batch and pass (OpCall.key,
 * from dropoutCallKey), mixed with the layer and module that own the mask.
 */
export function dropoutCallKey(seed: number, step: number, microBatch: number, pass: number): number {
  return pcgHash((pcgHash((pcgHash((pcgHash(seed >>> 0) ^ step) >>> 0) ^ microBatch) >>> 0) ^ pass) >>> 0);
}

export function dropoutModuleKey(callKey: number, layer: number, module: number): number {
  return pcgHash((pcgHash((callKey ^ layer) >>> 0) ^ module) >>> 0);
}

interface DropoutSpec {
  width: number;
  p: number;
  scale: number;
  /** Identifies the owner of the mask (layer · 8 + module). */
  salt: number;
}

function dropoutParams(s: DropoutSpec, call: OpCall): number[] {
  const key = dropoutModuleKey(call.key ?? 0, Math.floor(s.salt / 8), s.salt % 8);
  return [call.rows * s.width, key, dropBelowOf(s.p), s.scale / (1 - s.p)];
}

/** out = scaled dropout of x, over rows of `width` (=). */
export class DropoutOp implements ModelOp {
  private constructor(private readonly op: Op, private readonly s: DropoutSpec) {}

  static async create(gpu: Gpu, s: DropoutSpec, x: GpuBuffer, out: GpuBuffer): Promise<DropoutOp> {
    return new DropoutOp(await Op.create(gpu, { kernel: 'dropout_fwd.wgsl', constants: { WG: ELEMENTWISE_WG }, params: 'uuuf', bindings: [x, out], label: 'dropout' }), s);
  }

  record(rec: Recorder, call: OpCall): void {
    const params = dropoutParams(this.s, call);
    rec.dispatch(this.op, params, ...grid1d(Math.ceil(params[0] / ELEMENTWISE_WG)));
  }
}

/** dx += the dropout's gradient of dout (the same mask as the forward call with the same key). */
export class DropoutBackwardOp implements ModelOp {
  private constructor(private readonly op: Op, private readonly s: DropoutSpec) {}

  static async create(gpu: Gpu, s: DropoutSpec, dout: GpuBuffer, dx: GpuBuffer): Promise<DropoutBackwardOp> {
    return new DropoutBackwardOp(await Op.create(gpu, { kernel: 'dropout_bwd.wgsl', constants: { WG: ELEMENTWISE_WG }, params: 'uuuf', bindings: [dout, dx], label: 'dropout_bwd' }), s);
  }

  record(rec: Recorder, call: OpCall): void {
    const params = dropoutParams(this.s, call);
    rec.dispatch(this.op, params, ...grid1d(Math.ceil(params[0] / ELEMENTWISE_WG)));
  }
}
