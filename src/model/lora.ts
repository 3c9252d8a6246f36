/**
 * LoRA adapters as HF PEFT defines them (LoraLayer on nn.Linear): for a target module with frozen
 * weight W [out, in],  y = x·Wᵀ + (alpha / r) · dropout(x)·Aᵀ·Bᵀ,  A [r, in], B [out, r].
 * Tensor names are PEFT's (`base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight`);
 * modules are named by their HF names (q_proj, ..., down_proj). Only the seven projections of the
 * decoder layers can be targets (the embedding and lm_head are not Linear layers LoRA applies to
 * in the paper's recipe).
 */
import type { LlamaConfig } from './config.ts';
import { hfDecays, layerTensorNames, llamaWeightSpecs } from './weights.ts';
import { ParamTable, type ParamSpec } from './param-table.ts';
import { ParamBuffers } from './param-buffers.ts';
import type { Gpu } from '../gpu/device.ts';
import type { AdapterRefs } from '../ops/lora.ts';

/** The decoder layer's projections by HF module name, and their role in src/model/layer.ts. */
export const LORA_MODULES = { q_proj: 'q', k_proj: 'k', v_proj: 'v', o_proj: 'o', gate_proj: 'gate', up_proj: 'up', down_proj: 'down' } as const;
export type LoraModule = keyof typeof LORA_MODULES;
export type LayerRole = (typeof LORA_MODULES)[LoraModule];
export const DEFAULT_LORA_TARGETS: LoraModule[] = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

export interface LoraConfig {
  r: number;
  alpha: number;
  /** Dropout probability on each target's input (PEFT lora_dropout), in [0, 1). */
  dropout: number;
  targets: LoraModule[];
}

export function loraScale(c: LoraConfig): number {
  return c.alpha / c.r;
}

export function isLoraModule(name: string): name is LoraModule {
  return Object.hasOwn(LORA_MODULES, name);
}

/** PEFT's names of the A and B tensors adapting the base weight `baseName` (`model.layers.0.self_attn.q_proj.weight`). */
export function adapterNames(baseName: string): { a: string; b: string } {
  const module = baseName.replace(/\.weight$/, '');
  return { a: `base_model.model.${module}.lora_A.weight`, b: `base_model.model.${module}.lora_B.weight` };
}

/** Every adapter tensor of `c` on a model of config `cfg`, in model order: [A, B] per target per layer. */
export function loraSpecs(cfg: LlamaConfig, c: LoraConfig): ParamSpec[] {
  const shapes = new Map(llamaWeightSpecs(cfg).map((s) => [s.name, s.shape]));
  const specs: ParamSpec[] = [];
  for (let i = 0; i < cfg.num_hidden_layers; i++) {
    const names = layerTensorNames(i);
    for (const module of DEFAULT_LORA_TARGETS) {
      if (!c.targets.includes(module)) continue;
      const base = names[LORA_MODULES[module]];
      const [out, inp] = shapes.get(base)!;
      const n = adapterNames(base);
      specs.push({ name: n.a, shape: [c.r, inp], decay: hfDecays(n.a) }, { name: n.b, shape: [out, c.r], decay: hfDecays(n.b) });
    }
  }
  return specs;
}

/** The offset table of the adapter (weights, gradients and Adam moments alike), split to fit one binding per chunk. */
export function loraParamTable(cfg: LlamaConfig, c: LoraConfig, maxBindingBytes: number): ParamTable {
  return new ParamTable(loraSpecs(cfg, c), maxBindingBytes);
}

/** An adapter on the GPU (f32), as inference uses it: unmerged, y = x·Wᵀ + s·x·Aᵀ·Bᵀ (no dropout). */
export interface GpuAdapter {
  config: LoraConfig;
  weights: ParamBuffers;
}

/** Uploads adapter tensors (PEFT names, f32; e.g. src/formats/peft.ts readPeftAdapter) for a model of config `cfg`. */
export function uploadAdapter(gpu: Gpu, cfg: LlamaConfig, config: LoraConfig, tensors: ReadonlyMap<string, Float32Array>, maxBindingBytes = gpu.maxBindingBytes): GpuAdapter {
  const weights = new ParamBuffers(gpu, loraParamTable(cfg, config, maxBindingBytes), 'f32', 'adapter');
  for (const e of weights.table.entries) {
    const t = tensors.get(e.spec.name);
    if (!t) throw new Error(`adapter: missing tensor ${e.spec.name}`);
    weights.uploadTensor(e, t);
  }
  return { config, weights };
}

/**
 * Merges an adapter into its base weight in place: W[out, in] += scale · B[out, r] · A[r, in], in f64
 * sums rounded once to f32 (what PEFT's merge_and_unload computes, in the weight's precision).
 */
export function mergeLora(W: Float32Array, out: number, inFeatures: number, A: Float32Array, B: Float32Array, r: number, scale: number): void {
  for (let o = 0; o < out; o++) {
    for (let i = 0; i < inFeatures; i++) {
      let s = 0;
      for (let k = 0; k < r; k++) s += B[o * r + k] * A[k * inFeatures + i];
      W[o * inFeatures + i] += scale * s;
    }
  }
}

/** The A and B of the adapter on base weight `baseName` in `buffers` (an adapter's table), or undefined when that projection is not a target. */
export function adapterRefsIn(buffers: ParamBuffers): (baseName: string) => AdapterRefs | undefined {
  return (baseName) => {
    const n = adapterNames(baseName);
    const t = buffers.table;
    return t.byName.has(n.a) ? { a: { entry: t.get(n.a), buffers }, b: { entry: t.get(n.b), buffers } } : undefined;
  };
}
