/**
 * The new K/V rows of continuous batching's independent rows into their slots' KV caches
 * (kernels/kv_scatter_fwd.wgsl; reference src/reference/kv_scatter.ts; src/model/rows-forward.ts).
 */
import type { GpuBuffer } from '../gpu/buffers.ts';
import type { Gpu } from '../gpu/device.ts';
import { grid1d, Op, type Recorder } from '../gpu/kernels.ts';
import { ELEMENTWISE_WG, type ModelOp, type OpCall } from './op.ts';

/**
 * kCache/vCache [slots, Tmax, W] row (places[r].slot·Tmax + places[r].pos) = kRows/vRows [R, W]
 * row r, for r < call.rows. Reads rows.
 */
export class KvScatterOp implements ModelOp {
  private constructor(private readonly op: Op, private readonly W: number, private readonly Tmax: number) {}

  static async create(gpu: Gpu, dims: { W: number; Tmax: number }, b: { kRows: GpuBuffer; vRows: GpuBuffer; places: GpuBuffer; kCache: GpuBuffer; vCache: GpuBuffer }): Promise<KvScatterOp> {
    const op = await Op.create(gpu, {
      kernel: 'kv_scatter_fwd.wgsl',
      constants: { WG: ELEMENTWISE_WG },
      params: 'uuu',
      bindings: [b.kRows, b.vRows, b.places, b.kCache, b.vCache],
      label: `kv_scatter:${b.kCache.label}`,
    });
    return new KvScatterOp(op, dims.W, dims.Tmax);
  }

  record(rec: Recorder, call: OpCall): void {
    rec.dispatch(this.op, [call.rows, this.Tmax, this.W], ...grid1d(Math.ceil((call.rows * this.W) / ELEMENTWISE_WG)));
  }
}
