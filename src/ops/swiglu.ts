/** SwiGLU h = silu(g) ∘ u (kernels/swiglu_fwd.wgsl, swiglu_bwd.wgsl; reference src/reference/swiglu.ts). Both read call.rows. */
import type { GpuBuffer } from '../gpu/buffers.ts';
import type { Gpu } from '../gpu/device.ts';
import { grid1d, Op, type Recorder } from '../gpu/kernels.ts';
import { ELEMENTWISE_WG, type ModelOp, type OpCall } from './op.ts';

/** h = silu(g) ∘ u over rows of `width` (the intermediate size). */
export class SwiGluOp implements ModelOp {
  private constructor(private readonly op: Op, private readonly width: number) {}

  static async create(gpu: Gpu, width: number, g: GpuBuffer, u: GpuBuffer, h: GpuBuffer): Promise<SwiGluOp> {
    return new SwiGluOp(await Op.create(gpu, { kernel: 'swiglu_fwd.wgsl', constants: { WG: ELEMENTWISE_WG }, params: 'u', bindings: [g, u, h], label: 'swiglu' }), width);
  }

  record(rec: Recorder, call: OpCall): void {
    const n = call.rows * this.width;
    rec.dispatch(this.op, [n], ...grid1d(Math.ceil(n / ELEMENTWISE_WG)));
  }
}

/** dg, du from dh (h = silu(g) ∘ u). */
export class SwiGluBackwardOp implements ModelOp {
  private constructor(private readonly op: Op, private readonly width: number) {}

  static async create(gpu: Gpu, width: number, dh: GpuBuffer, g: GpuBuffer, u: GpuBuffer, dg: GpuBuffer, du: GpuBuffer): Promise<SwiGluBackwardOp> {
    return new SwiGluBackwardOp(await Op.create(gpu, { kernel: 'swiglu_bwd.wgsl', constants: { WG: ELEMENTWISE_WG }, params: 'u', bindings: [dh, g, u, dg, du], label: 'swiglu_bwd' }), width);
  }

  record(rec: Recorder, call: OpCall): void {
    const n = call.rows * this.width;
    rec.dispatch(this.op, [n], ...grid1d(Math.ceil(n / ELEMENTWISE_WG)));
  }
}
