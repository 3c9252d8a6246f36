/**
 * Token embedding over the table's row chunks (kernels/embedding_fwd.wgsl, embedding_bwd.wgsl;
 * reference src/reference/embedding.ts). The backward's CSR index of rows by token is built on the
 * CPU by src/model/embedding-index.ts.
 */
import type { GpuBuffer } from '../gpu/buffers.ts';
import type { Gpu } from '../gpu/device.ts';
import { grid1d, Op, type Recorder } from '../gpu/kernels.ts';
import { ELEMENTWISE_WG, type ModelOp, type OpCall, type WeightRef } from './op.ts';

/** x[r] = E[ids[inRow + r]] for r < rows. Reads rows and inRow (a pass of a longer prompt). */
export class EmbeddingOp implements ModelOp {
  private constructor(private readonly ops: Op[], private readonly w: WeightRef) {}

  static async create(gpu: Gpu, w: WeightRef, ids: GpuBuffer, x: GpuBuffer): Promise<EmbeddingOp> {
    const ops: Op[] = [];
    for (const c of w.entry.chunks) {
      ops.push(
        await Op.create(gpu, {
          kernel: 'embedding_fwd.wgsl',
          constants: { W_BF16: w.buffers.elem === 'bf16', WG: ELEMENTWISE_WG },
          params: 'uuuuu',
          bindings: [ids, w.buffers.binding(c), x],
          label: `embed[${c.rowStart}]`,
        }),
      );
    }
    return new EmbeddingOp(ops, w);
  }

  record(rec: Recorder, call: OpCall): void {
    const H = this.w.entry.cols;
    this.w.entry.chunks.forEach((c, i) => {
      rec.dispatch(this.ops[i], [call.rows, H, c.rowStart, c.rows, call.inRow ?? 0], ...grid1d(Math.ceil((call.rows * H) / ELEMENTWISE_WG)));
    });
  }
}

/** dE += scatter of dx rows by token id, per vocab chunk. call.rows = the number of distinct ids in the index. */
export class EmbeddingBackwardOp implements ModelOp {
  private constructor(private readonly ops: Op[], private readonly grad: WeightRef) {}

  static async create(gpu: Gpu, grad: WeightRef, dx: GpuBuffer, index: { uniq: GpuBuffer; starts: GpuBuffer; rows: GpuBuffer }): Promise<EmbeddingBackwardOp> {
    const ops: Op[] = [];
    for (const c of grad.entry.chunks) {
      ops.push(await Op.create(gpu, { kernel: 'embedding_bwd.wgsl', params: 'uuuu', bindings: [dx, index.uniq, index.starts, index.rows, grad.buffers.binding(c)], label: `embedding_bwd[${c.rowStart}]` }));
    }
    return new EmbeddingBackwardOp(ops, grad);
  }

  record(rec: Recorder, call: OpCall): void {
    this.grad.entry.chunks.forEach((c, i) => {
      rec.dispatch(this.ops[i], [call.rows, this.grad.entry.cols, c.rowStart, c.rows], ...grid1d(call.rows));
    });
  }
}
