/**
 * LoRA (src/model/lora.ts, src/ops/lora.ts, TrainStep with `lora`) against PyTorch with PEFT's
 * semantics: test/fixtures/lora-tiny was written by test/fixtures/make_lora_fixture.py (float64;
 * r 4, alpha 8, dropout 0, all seven projections, on train-tiny's base model frozen; a non-zero
 * initial B so step 1 has gradients for A and B; 5 AdamW steps on the adapter, lr 1e-3, weight
 * decay 0.1, clipping 1.0). Checks: the PEFT adapter files load (config and tensors, with clear
 * errors for a mismatched one); the logits of base + adapter (unmerged inference); step 1's
 * gradient of every A and B; the 5 losses and pre-clip grad norms; the adapter after 5 steps.
 * Tolerances: TOL.lora* in test/tolerances.ts. Measured errors are printed.
 */
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createStorage, readF32 } from '../src/gpu/buffers.ts';
import { Recorder } from '../src/gpu/kernels.ts';
import { loadLlamaConfig, loadLlamaModel } from '../src/formats/hf-checkpoint.ts';
import { readPeftAdapter } from '../src/formats/peft.ts';
import { SafetensorsFile } from '../src/formats/safetensors.ts';
import { uploadAdapter } from '../src/model/lora.ts';
import { LlamaForward } from '../src/model/llama.ts';
import { LinearOp } from '../src/ops/matmul.ts';
import { TrainStep } from '../src/train/step.ts';
import { TOL } from './tolerances.ts';
import { expectUserError } from './util/user-error.ts';
import { gpu } from './util/gpu.ts';

const base = path.join(import.meta.dirname, 'fixtures', 'train-tiny');
const dir = path.join(import.meta.dirname, 'fixtures', 'lora-tiny');
const expected = JSON.parse(readFileSync(path.join(dir, 'expected.json'), 'utf8')) as {
  settings: { lr: number; beta1: number; beta2: number; eps: number; weight_decay: number; max_grad_norm: number; steps: number; tensor_order: string[] };
  samples: { ids: number[]; targetStart: number }[];
  losses: number[];
  grad_norms: number[];
  step1_grads: Record<string, { shape: number[]; values: number[]; norm: number }>;
  logits_with_adapter: { T: number; positions: number[]; logits: number[][]; logsumexp: number[] };
};
const S = expected.settings;
const MAX_LEN = 128;
const relErr = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);

function readAll(file: string): Map<string, Float32Array> {
  const st = SafetensorsFile.open(file);
  try {
    return new Map(st.names().map((n) => [n, st.readF32(n)]));
  } finally {
    st.close();
  }
}

describe('PEFT adapter files', () => {
  it('reads the fixture adapter: config and the 28 tensors in PEFT names', () => {
    const a = readPeftAdapter(dir, loadLlamaConfig(base));
    expect(a.config).toEqual({ r: 4, alpha: 8, dropout: 0, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] });
    expect([...a.tensors.keys()].sort()).toEqual([...S.tensor_order].sort());
  });

  it('refuses an adapter of another base, an unknown module and PEFT features we do not implement, in one line', () => {
    const tmp = mkdtempSync(path.join(tmpdir(), 'lora-'));
    const copy = (name: string, edit: (j: Record<string, unknown>) => void) => {
      const d = path.join(tmp, name);
      cpSync(dir, d, { recursive: true });
      const f = path.join(d, 'adapter_config.json');
      const j = JSON.parse(readFileSync(f, 'utf8'));
      edit(j);
      writeFileSync(f, JSON.stringify(j));
      return d;
    };
    const cfg = loadLlamaConfig(base);
    const weights = (d: string) => path.join(d, 'adapter_model.safetensors');
    const config = (d: string) => path.join(d, 'adapter_config.json');
    const r8 = copy('r8', (j) => (j.r = 8));
    expectUserError(() => readPeftAdapter(r8, cfg), weights(r8), /lora_A\.weight has shape \[4,24\], the base model and r = 8 need \[8,24\]/);
    const mod = copy('mod', (j) => (j.target_modules = ['q_proj', 'lm_head']));
    expectUserError(() => readPeftAdapter(mod, cfg), config(mod), /target_modules: "lm_head" is not one of/);
    const dora = copy('dora', (j) => (j.use_dora = true));
    expectUserError(() => readPeftAdapter(dora, cfg), config(dora), /use_dora true is not supported/);
    const ia3 = copy('ia3', (j) => (j.peft_type = 'IA3'));
    expectUserError(() => readPeftAdapter(ia3, cfg), config(ia3), /peft_type "IA3" is not supported/);
    expectUserError(() => readPeftAdapter(dir, { ...cfg, num_hidden_layers: 3 }), weights(dir), /missing tensor base_model\.model\.model\.layers\.2\./);
  });
});

describe.skipIf(!gpu)('LoRA vs PyTorch (test/fixtures/lora-tiny)', () => {
  const adapter = () => readPeftAdapter(dir, loadLlamaConfig(base));

  it('base + adapter logits (unmerged inference) match PyTorch', async () => {
    const g = gpu!;
    const model = await loadLlamaModel(g, base, 'f32');
    const a = adapter();
    const ad = uploadAdapter(g, model.cfg, a.config, a.tensors);
    const ids = expected.samples[0].ids;
    const T = ids.length;
    const V = model.dims.V;
    const fwd = await LlamaForward.create(model, { maxBatch: 1, maxSeq: T, adapter: ad });
    const logits = createStorage(g, 'logits', T * V * 4);
    const head = await LinearOp.create(g, model.lmHead(), fwd.state.xn, logits, false);
    g.device.queue.writeBuffer(fwd.state.ids.buffer, 0, new Uint32Array(ids));
    const rec = new Recorder(g);
    expect(fwd.record(rec, 1, T, 0)).toBe(0);
    head.record(rec, { rows: T });
    rec.submit();
    const out = await readF32(g, logits, T * V);
    const L = expected.logits_with_adapter;
    let maxErr = 0;
    let maxRef = 0;
    L.positions.forEach((t, k) => L.logits[k].forEach((v, j) => {
      maxErr = Math.max(maxErr, Math.abs(out[t * V + j] - v));
      maxRef = Math.max(maxRef, Math.abs(v));
    }));
    // Every position: the log-sum-exp over the vocabulary.
    let lseErr = 0;
    for (let t = 0; t < T; t++) {
      let m = -Infinity;
      for (let j = 0; j < V; j++) m = Math.max(m, out[t * V + j]);
      let s = 0;
      for (let j = 0; j < V; j++) s += Math.exp(out[t * V + j] - m);
      lseErr = Math.max(lseErr, relErr(m + Math.log(s), L.logsumexp[t]));
    }
    console.log(`lora logits: normwise max error ${(maxErr / maxRef).toExponential(3)}; log-sum-exp max rel err ${lseErr.toExponential(3)}`);
    expect(maxErr / maxRef).toBeLessThan(TOL.loraLogits.rtol);
    expect(lseErr).toBeLessThan(TOL.loraLogits.rtol);
    fwd.state.destroy();
    model.destroy();
  });

  for (const checkpointing of [true, false]) {
    it(`5 AdamW steps on the adapter (checkpointing ${checkpointing}): step-1 gradients, losses, grad norms and the final adapter`, async () => {
      const a = adapter();
      const step = await TrainStep.create({
        modelDir: base,
        dtype: 'f32',
        maxLen: MAX_LEN,
        maxBatch: 1,
        checkpointing,
        weightDecay: S.weight_decay,
        maxGradNorm: S.max_grad_norm,
        beta1: S.beta1,
        beta2: S.beta2,
        eps: S.eps,
        lora: { config: a.config, seed: 1, initial: a.tensors },
      });
      try {
        const losses: number[] = [];
        const norms: number[] = [];
        let gradErr = 0;
        for (let k = 1; k <= S.steps; k++) {
          const s = expected.samples[k - 1];
          const r = await step.trainStep([{ samples: [{ ids: s.ids, targetStart: s.targetStart, truncated: false }] }], k, S.lr);
          losses.push(r.loss);
          norms.push(r.gradNorm);
          if (k === 1) {
            for (const [name, want] of Object.entries(expected.step1_grads)) {
              const ours = (await step.grads.readTensor(step.trainTable.get(name))) as Float32Array;
              let maxErr = 0;
              let maxRef = 0;
              want.values.forEach((v, j) => {
                maxErr = Math.max(maxErr, Math.abs(ours[j] - v));
                maxRef = Math.max(maxRef, Math.abs(v));
              });
              gradErr = Math.max(gradErr, maxErr / maxRef);
            }
          }
        }
        const lossErr = Math.max(...losses.map((l, i) => relErr(l, expected.losses[i])));
        const normErr = Math.max(...norms.map((n, i) => relErr(n, expected.grad_norms[i])));
        const final = await step.exportWeights();
        const want = readAll(path.join(dir, 'final_adapter.safetensors'));
        let finalErr = 0;
        expect([...final.keys()].sort()).toEqual([...want.keys()].sort());
        for (const [name, w] of want) {
          const o = final.get(name)!.data;
          for (let i = 0; i < w.length; i++) finalErr = Math.max(finalErr, Math.abs(o[i] - w[i]));
        }
        console.log(`lora train (checkpointing ${checkpointing}): step-1 grads normwise ${gradErr.toExponential(3)}; losses ${lossErr.toExponential(3)}; grad norms ${normErr.toExponential(3)}; final adapter max abs ${finalErr.toExponential(3)}`);
        expect(gradErr).toBeLessThan(TOL.loraGrads.rtol);
        expect(lossErr).toBeLessThan(TOL.loraLoss.rtol);
        expect(normErr).toBeLessThan(TOL.loraLoss.rtol);
        expect(finalErr).toBeLessThan(TOL.loraAdapter.atol);
      } finally {
        step.destroy();
      }
    });
  }
});
