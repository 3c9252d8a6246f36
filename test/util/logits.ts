/** The model's logits of every position of one sequence: one whole-sequence forward and lm_head on the GPU (the tests' "ours" next to PyTorch and llama.cpp). */
import { createStorage, readF32 } from '../../src/gpu/buffers.ts';
import { Recorder } from '../../src/gpu/kernels.ts';
import { LlamaForward, type LlamaModel } from '../../src/model/llama.ts';
import { LinearOp } from '../../src/ops/matmul.ts';

/** Logits [T, V] of `ids` (row t: the distribution after token t). */
export async function logitsAllRows(model: LlamaModel, ids: number[]): Promise<Float32Array> {
  const g = model.gpu;
  const T = ids.length;
  const V = model.dims.V;
  const fwd = await LlamaForward.create(model, { maxBatch: 1, maxSeq: T });
  const logits = createStorage(g, 'logits', T * V * 4);
  const head = await LinearOp.create(g, model.lmHead(), fwd.state.xn, logits, false);
  g.device.queue.writeBuffer(fwd.state.ids.buffer, 0, new Uint32Array(ids));
  const rec = new Recorder(g);
  fwd.record(rec, 1, T, 0);
  head.record(rec, { rows: T });
  rec.submit();
  const out = await readF32(g, logits, T * V);
  fwd.state.destroy();
  logits.destroy();
  return out;
}
