/**
 * Synthetic LLaMA weights from a seed, generated on the GPU (kernels/fill_uniform_fwd.wgsl): a
 * model of any size without a file or a host copy, for the tests at LLaMA-7B's widths and
 * bench/7b.ts. test/fixtures/make_llama7b_fixture.py draws the same values in PyTorch.
 *
 * Tensor t (its index in HF model order, src/model/weights.ts llamaWeightSpecs; LoRA tensors
 * 100 + 16·layer + 2·module (+1 for B), module in LORA_MODULES order) gets key pcg(seed ^ pcg(t));
 * element i is d·scale + shift with d = (pcg(key ^ i) >> 8)·2^-24 − 0.5:
 *   matrices: uniform with std 0.02 (HF's initializer_range): scale 2·0.02·√3, shift 0;
 *   norm weights: exactly 1 (HF's init): scale 0, shift 1;
 *   LoRA A [r, in]: uniform(±1/√in) (PEFT's kaiming bound): scale 2/√in; B [out, r]: std 0.01, not
 *   zero, so that both get gradients: scale 2·0.01·√3.
 */
import type { Gpu } from '../gpu/device.ts';
import { grid1d, Op, Recorder } from '../gpu/kernels.ts';
import { pcgHash } from '../util/hash.ts';
import type { LlamaConfig } from './config.ts';
import { DEFAULT_LORA_TARGETS, type LoraConfig } from './lora.ts';
import type { ParamBuffers } from './param-buffers.ts';
import { llamaWeightSpecs } from './weights.ts';

export interface SyntheticTensor {
  key: number;
  scale: number;
  shift: number;
}

const WG = 256;

function tensorKey(seed: number, t: number): number {
  return pcgHash((seed ^ pcgHash(t)) >>> 0);
}

/** The generator of every base tensor of `cfg`, by HF name. */
export function syntheticBase(cfg: LlamaConfig, seed: number): Map<string, SyntheticTensor> {
  const out = new Map<string, SyntheticTensor>();
  llamaWeightSpecs(cfg).forEach((s, t) => {
    const norm = s.shape.length === 1;
    out.set(s.name, { key: tensorKey(seed, t), scale: norm ? 0 : 2 * 0.02 * Math.sqrt(3), shift: norm ? 1 : 0 });
  });
  return out;
}

/** The generator of every adapter tensor of `lora` on `cfg`, by PEFT name. */
export function syntheticAdapter(cfg: LlamaConfig, lora: LoraConfig, seed: number, names: (layer: number, module: string) => { a: string; b: string; in: number }): Map<string, SyntheticTensor> {
  const out = new Map<string, SyntheticTensor>();
  for (let layer = 0; layer < cfg.num_hidden_layers; layer++) {
    DEFAULT_LORA_TARGETS.forEach((module, m) => {
      if (!lora.targets.includes(module)) return;
      const n = names(layer, module);
      const t = 100 + 16 * layer + 2 * m;
      out.set(n.a, { key: tensorKey(seed, t), scale: 2 / Math.sqrt(n.in), shift: 0 });
      out.set(n.b, { key: tensorKey(seed, t + 1), scale: 2 * 0.01 * Math.sqrt(3), shift: 0 });
    });
  }
  return out;
}

/** Fills every tensor of `buffers` (f32 or bf16) with its synthetic values, chunk by chunk, in one submit. */
export async function fillSynthetic(gpu: Gpu, buffers: ParamBuffers, tensors: ReadonlyMap<string, SyntheticTensor>): Promise<void> {
  const bf16 = buffers.elem === 'bf16';
  const ops = new Map<number, Op>();
  for (let a = 0; a < buffers.arenas.length; a++) {
    ops.set(a, await Op.create(gpu, { kernel: 'fill_uniform_fwd.wgsl', constants: { WG, W_BF16: bf16 }, params: 'uuuuff', bindings: [buffers.arenas[a]], label: `fill:${buffers.label}[${a}]` }));
  }
  const rec = new Recorder(gpu, `fill ${buffers.label}`);
  for (const e of buffers.table.entries) {
    const t = tensors.get(e.spec.name);
    if (!t) throw new Error(`synthetic weights: no generator for ${e.spec.name}`);
    for (const c of e.chunks) {
      const outOffset = buffers.offsetOf(c) / (bf16 ? 2 : 4);
      const work = bf16 ? Math.ceil(((outOffset % 2) + c.elems) / 2) : c.elems;
      rec.dispatch(ops.get(c.arena)!, [c.elems, c.elemStart, outOffset, t.key, t.scale, t.shift], ...grid1d(Math.ceil(work / WG)));
    }
  }
  rec.submit();
  await gpu.settle(gpu.device.queue.onSubmittedWorkDone());
}
