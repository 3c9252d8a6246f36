/**
 * The whole model against PyTorch: test/fixtures/llama-tiny was written by
 * test/fixtures/make_llama_fixture.py (a plain-PyTorch LLaMA in HF conventions: HF weight names,
 * rotate-half RoPE, rms_norm_eps, grouped-query heads; golden logits computed in float64).
 * Checks the full forward (prefill of a whole sequence) and the KV-cache decode path token by token,
 * with f32 weights and with bf16 weights (against the fixture's bf16-rounded model).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createStorage, readF32 } from '../src/gpu/buffers.ts';
import { Recorder } from '../src/gpu/kernels.ts';
import { LlamaForward, type LlamaModel } from '../src/model/llama.ts';
import { loadLlamaModel } from '../src/formats/hf-checkpoint.ts';
import { LinearOp } from '../src/ops/matmul.ts';
import { logitsAllRows } from './util/logits.ts';
import { PARITY } from './tolerances.ts';
import { gpu } from './util/gpu.ts';

const dir = path.join(import.meta.dirname, 'fixtures', 'llama-tiny');
const golden = JSON.parse(readFileSync(path.join(dir, 'golden.json'), 'utf8')) as {
  input_ids: number[][];
  logits: number[][][];
  logits_bf16: number[][][];
};

/** max |ours − golden| / max |golden| over a sequence's logits (a normwise relative error: elementwise ratios explode at logits near 0). */
function normwiseError(ours: Float32Array, want: number[][]): number {
  let maxErr = 0;
  let maxRef = 0;
  want.forEach((row, t) =>
    row.forEach((v, j) => {
      maxErr = Math.max(maxErr, Math.abs(ours[t * row.length + j] - v));
      maxRef = Math.max(maxRef, Math.abs(v));
    }),
  );
  return maxErr / maxRef;
}

/** Prefill `split` tokens, then decode the rest one at a time through the KV cache; logits of every position. */
async function logitsByDecode(model: LlamaModel, ids: number[], split: number): Promise<Float32Array> {
  const g = model.gpu;
  const V = model.dims.V;
  const fwd = await LlamaForward.create(model, { maxBatch: 1, maxSeq: ids.length + 3 });
  const logits = createStorage(g, 'logits', split * V * 4);
  const head = await LinearOp.create(g, model.lmHead(), fwd.state.xn, logits, false);
  const out = new Float32Array(ids.length * V);
  g.device.queue.writeBuffer(fwd.state.ids.buffer, 0, new Uint32Array(ids.slice(0, split)));
  let rec = new Recorder(g);
  fwd.record(rec, 1, split, 0);
  head.record(rec, { rows: split });
  rec.submit();
  out.set(await readF32(g, logits, split * V), 0);
  for (let pos = split; pos < ids.length; pos++) {
    g.device.queue.writeBuffer(fwd.state.ids.buffer, 0, new Uint32Array([ids[pos]]));
    rec = new Recorder(g);
    fwd.record(rec, 1, 1, pos);
    head.record(rec, { rows: 1 });
    rec.submit();
    out.set(await readF32(g, logits, V), pos * V);
  }
  fwd.state.destroy();
  logits.destroy();
  return out;
}

describe.skipIf(!gpu)('LLaMA forward vs PyTorch (test/fixtures/llama-tiny)', () => {
  for (const dtype of ['f32', 'bf16'] as const) {
    const want = dtype === 'f32' ? golden.logits : golden.logits_bf16;
    const tol = dtype === 'f32' ? PARITY.logitsF32 : PARITY.logitsBf16;
    it(`${dtype}: full-sequence logits within ${tol} (normwise)`, async () => {
      const model = await loadLlamaModel(gpu!, dir, dtype);
      for (let s = 0; s < golden.input_ids.length; s++) {
        const err = normwiseError(await logitsAllRows(model, golden.input_ids[s]), want[s]);
        console.log(`parity ${dtype} seq ${s} (T=${golden.input_ids[s].length}): normwise max error ${err.toExponential(3)}`);
        expect(err).toBeLessThan(tol);
      }
      model.destroy();
    });
    it(`${dtype}: prefill + KV-cache decode gives the same logits`, async () => {
      const model = await loadLlamaModel(gpu!, dir, dtype);
      const ids = golden.input_ids[0];
      const err = normwiseError(await logitsByDecode(model, ids, 5), want[0]);
      console.log(`parity ${dtype} decode: normwise max error ${err.toExponential(3)}`);
      expect(err).toBeLessThan(tol);
      model.destroy();
    });
  }
});

describe.skipIf(!gpu)('weights split into row chunks (as a 7B embedding/lm_head must be)', () => {
  it('a tiny binding limit splits every matrix, and the logits do not change', async () => {
    // 8 KiB bindings: the 67×60 embedding and lm_head (16 KiB in f32) and every MLP matrix
    // (121×60) become several chunks, each bound as its own range and dispatched on its own.
    const small = Object.assign(Object.create(Object.getPrototypeOf(gpu!)), gpu!, { maxBindingBytes: 8192 });
    for (const dtype of ['f32', 'bf16'] as const) {
      const model = await loadLlamaModel(small, dir, dtype);
      expect(model.table.get('model.embed_tokens.weight').chunks.length).toBeGreaterThan(1);
      expect(model.table.get('lm_head.weight').chunks.length).toBeGreaterThan(1);
      expect(model.table.get('model.layers.0.mlp.down_proj.weight').chunks.length).toBeGreaterThan(1);
      const err = normwiseError(await logitsAllRows(model, golden.input_ids[0]), dtype === 'f32' ? golden.logits[0] : golden.logits_bf16[0]);
      console.log(`parity ${dtype} with chunked weights: normwise max error ${err.toExponential(3)}`);
      expect(err).toBeLessThan(dtype === 'f32' ? PARITY.logitsF32 : PARITY.logitsBf16);
      model.destroy();
    }
  });
});

describe.skipIf(!gpu)('activations split to the binding limit (long prompts at 7B widths)', () => {
  it('a prompt longer than one pass runs in row chunks through the KV cache, and its last chunk\'s logits do not change', async () => {
    // 4 KiB bindings: 4096 / (4 · 121) = 8 rows of the widest activation (intermediate 121) per
    // pass, so the 13-token sequence runs as rows [0, 8) then [8, 13), the second chunk attending
    // to the first through the KV cache.
    const small = Object.assign(Object.create(Object.getPrototypeOf(gpu!)), gpu!, { maxBindingBytes: 4096 });
    const model = await loadLlamaModel(small, dir, 'f32');
    const ids = golden.input_ids[0];
    const T = ids.length;
    const V = model.dims.V;
    const fwd = await LlamaForward.create(model, { maxBatch: 1, maxSeq: T });
    expect(fwd.state.maxRows).toBe(8);
    const logits = createStorage(small, 'logits', T * V * 4);
    const head = await LinearOp.create(small, model.lmHead(), fwd.state.xn, logits, false);
    small.device.queue.writeBuffer(fwd.state.ids.buffer, 0, new Uint32Array(ids));
    const rec = new Recorder(small);
    const first = fwd.record(rec, 1, T, 0);
    expect(first).toBe(8);
    head.record(rec, { rows: T - first });
    rec.submit();
    const out = await readF32(small, logits, (T - first) * V);
    const err = normwiseError(out, golden.logits[0].slice(first));
    console.log(`parity f32, prefill in row chunks: normwise max error ${err.toExponential(3)}`);
    expect(err).toBeLessThan(PARITY.logitsF32);
    fwd.state.destroy();
    logits.destroy();
    model.destroy();
  });
});
