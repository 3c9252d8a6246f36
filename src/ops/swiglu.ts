/** SwiGLU h = silu(g) ∘ u (kernels/swiglu_fwd.wgsl, swiglu_bwd.wgsl; reference src/reference/swiglu.ts). Both read call.rows. */
import type { GpuBuffer } from '../gpu/buffers.ts';
import type { Gpu } from '../gpu/device.ts';
import { grid1d, Op, type Recorder } from '../gpu/kernels.ts';
import { ELEMENTWISE_WG, type ModelOp, type OpCall } from './op.ts';

/**
 * Elements per thread of swiglu_fwd.wgsl (its EPT). On a GPU 1. On lavapipe each workgroup costs a
 * few µs beyond its work, so a workgroup takes 8·256 elements: 16 rows of weights/tiny's I = 384
 * took 34 µs against 80 µs at 1 element a thread, 17 vs 20 µs for one row (medians of 5
 * interleaved runs); the exp is not the cost (g·u without it took as long).
 */
export function swigluElementsPerThread(gpu: Gpu): number {
  return gpu.report.isSoftware ? 8 : 1;
}

/** h = silu(g) ∘ u over rows of `width` (the intermediate size). */
export class SwiGluOp implements ModelOp {
  private constructor(private readonly op: Op, private readonly width: number, private readonly EPT: number) {}

  static async create(gpu: Gpu, width: number, g: GpuBuffer, u: GpuBuffer, h: GpuBuffer): Promise<SwiGluOp> {
    const EPT = swigluElementsPerThread(gpu);
    return new SwiGluOp(await Op.create(gpu, { kernel: 'swiglu_fwd.wgsl', constants: { WG: ELEMENTWISE_WG, EPT }, params: 'u', bindings: [g, u, h], label: 'swiglu' }), width, EPT);
  }

  record(rec: Recorder, call: OpCall): void {
    const n = call.rows * this.width;
    rec.dispatch(this.op, [n], ...grid1d(Math.ceil(n / (ELEMENTWISE_WG * this.EPT))));
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
