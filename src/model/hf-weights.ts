/**
 * LLaMA weights in HF layout, on the CPU: the expected tensor names/shapes for a config, loading a
 * checkpoint directory (checked against them), and saving one.
 *
 * Shapes (torch nn.Linear stores [out_features, in_features]; y = x @ W^T):
 *   V = vocab_size, H = hidden_size, I = intermediate_size, nH = heads, nKV = kv heads, hd = H / nH
 *   model.embed_tokens.weight                      [V, H]
 *   model.layers.{i}.input_layernorm.weight          [H]
 *   model.layers.{i}.self_attn.q_proj.weight         [nH*hd, H]
 *   model.layers.{i}.self_attn.k_proj.weight         [nKV*hd, H]
 *   model.layers.{i}.self_attn.v_proj.weight         [nKV*hd, H]
 *   model.layers.{i}.self_attn.o_proj.weight         [H, nH*hd]
 *   model.layers.{i}.post_attention_layernorm.weight [H]
 *   model.layers.{i}.mlp.gate_proj.weight            [I, H]
 *   model.layers.{i}.mlp.up_proj.weight              [I, H]
 *   model.layers.{i}.mlp.down_proj.weight            [H, I]
 *   model.norm.weight                                [H]
 *   lm_head.weight                                   [V, H]  (absent when tie_word_embeddings)
 * q/k rows are in HF's rotate-half order (the conversion script permuted Meta's interleaved rows),
 * so RoPE pairs element d with d + hd/2 within each head.
 */
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.ts';
import { tempPathFor } from '../util/atomic.ts';
import { bf16ArrayToF32, f32ArrayToBf16 } from '../util/bf16.ts';
import { headDim, type LlamaConfig, writeLlamaConfig } from './config.ts';
import { SafetensorsModel, writeSafetensorsSharded, type TensorToWrite, DEFAULT_MAX_SHARD_BYTES } from './safetensors.ts';

export interface WeightSpec {
  name: string;
  shape: number[];
}

/** Every HF tensor a LlamaForCausalLM with config `cfg` has, with its shape, in model order. */
export function llamaWeightSpecs(cfg: LlamaConfig): WeightSpec[] {
  const V = cfg.vocab_size, H = cfg.hidden_size, I = cfg.intermediate_size;
  const hd = headDim(cfg);
  const q = cfg.num_attention_heads * hd, kv = cfg.num_key_value_heads * hd;
  const specs: WeightSpec[] = [{ name: 'model.embed_tokens.weight', shape: [V, H] }];
  for (let i = 0; i < cfg.num_hidden_layers; i++) {
    const p = `model.layers.${i}.`;
    specs.push(
      { name: `${p}input_layernorm.weight`, shape: [H] },
      { name: `${p}self_attn.q_proj.weight`, shape: [q, H] },
      { name: `${p}self_attn.k_proj.weight`, shape: [kv, H] },
      { name: `${p}self_attn.v_proj.weight`, shape: [kv, H] },
      { name: `${p}self_attn.o_proj.weight`, shape: [H, q] },
      { name: `${p}post_attention_layernorm.weight`, shape: [H] },
      { name: `${p}mlp.gate_proj.weight`, shape: [I, H] },
      { name: `${p}mlp.up_proj.weight`, shape: [I, H] },
      { name: `${p}mlp.down_proj.weight`, shape: [H, I] },
    );
  }
  specs.push({ name: 'model.norm.weight', shape: [H] });
  if (!cfg.tie_word_embeddings) specs.push({ name: 'lm_head.weight', shape: [V, H] });
  return specs;
}

export type WeightDtype = 'f32' | 'bf16';
export interface CpuTensorF32 { shape: number[]; data: Float32Array<ArrayBuffer> }
/** bf16 values as their bits. */
export interface CpuTensorBf16 { shape: number[]; data: Uint16Array<ArrayBuffer> }
export type CpuTensor = CpuTensorF32 | CpuTensorBf16;
/** What saveLlamaCheckpointCpu accepts: f32 values or bf16 bits, any backing buffer. */
export interface CpuTensorIn { shape: readonly number[]; data: Float32Array | Uint16Array }

/** Buffers some exporters save that are not weights (recomputed from rope_theta). */
const IGNORED = /(^|\.)rotary_emb\.inv_freq$/;

const shapeStr = (s: readonly number[]) => `[${s.join(',')}]`;

/**
 * Loads every weight of `cfg` from the checkpoint `dir` (model.safetensors or index + shards) as
 * f32 values or bf16 bits (F32 sources rounded to nearest even). Checks names and shapes against
 * llamaWeightSpecs before reading any data: a missing, unexpected or wrong-shaped tensor is one
 * UserError naming the file and the tensor. `rotary_emb.inv_freq` buffers are ignored, and so is an
 * `lm_head.weight` when tie_word_embeddings (transformers ties it to embed_tokens anyway).
 */
export function loadLlamaWeightsCpu(dir: string, cfg: LlamaConfig, opts: { dtype: 'f32' }): Map<string, CpuTensorF32>;
export function loadLlamaWeightsCpu(dir: string, cfg: LlamaConfig, opts: { dtype: 'bf16' }): Map<string, CpuTensorBf16>;
export function loadLlamaWeightsCpu(dir: string, cfg: LlamaConfig, opts: { dtype: WeightDtype }): Map<string, CpuTensor>;
export function loadLlamaWeightsCpu(dir: string, cfg: LlamaConfig, opts: { dtype: WeightDtype }): Map<string, CpuTensor> {
  const model = SafetensorsModel.open(dir);
  try {
    const specs = llamaWeightSpecs(cfg);
    checkLlamaTensors(model, cfg, specs);
    const out = new Map<string, CpuTensor>();
    for (const s of specs) {
      const data = opts.dtype === 'f32' ? model.readF32(s.name) : model.readBf16(s.name);
      out.set(s.name, { shape: s.shape, data } as CpuTensor);
    }
    return out;
  } finally {
    model.close();
  }
}

/** Throws the first missing / unexpected / wrong-shaped tensor of `model` against `specs`. */
export function checkLlamaTensors(model: SafetensorsModel, cfg: LlamaConfig, specs: WeightSpec[] = llamaWeightSpecs(cfg)): void {
  const expected = new Map(specs.map((s) => [s.name, s.shape]));
  for (const s of specs) {
    if (!model.has(s.name)) {
      const hint = s.name === 'lm_head.weight' ? ' (config.json has tie_word_embeddings false)' : '';
      throw new UserError(`${model.source}: missing tensor ${s.name}${hint}`);
    }
    const info = model.info(s.name);
    if (shapeStr(info.shape) !== shapeStr(s.shape)) {
      throw new UserError(`${model.fileOf(s.name).path}: ${s.name} has shape ${shapeStr(info.shape)}, config.json expects ${shapeStr(s.shape)}`);
    }
  }
  for (const name of model.names()) {
    if (expected.has(name) || IGNORED.test(name)) continue;
    if (name === 'lm_head.weight' && cfg.tie_word_embeddings) continue;
    throw new UserError(`${model.fileOf(name).path}: unexpected tensor ${name} (not a weight of the LLaMA described by config.json: ` +
      `${cfg.num_hidden_layers} layers${cfg.tie_word_embeddings ? ', tied embeddings' : ''})`);
  }
}

/**
 * Saves a checkpoint HF's LlamaForCausalLM.from_pretrained can load: `<dir>/config.json` (torch_dtype
 * set from `dtype`) + model.safetensors (or shards past maxShardBytes), tensors in `dtype` (f32
 * values converted to bf16 with round-to-nearest-even, bf16 bits widened exactly). A new `dir` is
 * built under a temp name and renamed into place; in an existing `dir` only config.json and the
 * safetensors files are replaced (each atomically; stale shards removed), other files are kept.
 */
export async function saveLlamaCheckpointCpu(dir: string, cfg: LlamaConfig, tensors: ReadonlyMap<string, CpuTensorIn>,
  dtype: WeightDtype, opts: { maxShardBytes?: number } = {}): Promise<void> {
  const specs = llamaWeightSpecs(cfg);
  const known = new Set(specs.map((s) => s.name));
  for (const s of specs) {
    const t = tensors.get(s.name);
    if (!t) throw new UserError(`${dir}: cannot save, missing tensor ${s.name}`);
    if (shapeStr(t.shape) !== shapeStr(s.shape)) throw new UserError(`${dir}: cannot save ${s.name}: shape ${shapeStr(t.shape)}, config expects ${shapeStr(s.shape)}`);
    const n = s.shape.reduce((a, b) => a * b, 1);
    if (t.data.length !== n) throw new UserError(`${dir}: cannot save ${s.name}: ${t.data.length} values for shape ${shapeStr(s.shape)}`);
  }
  for (const name of tensors.keys()) {
    if (!known.has(name)) throw new UserError(`${dir}: cannot save, unexpected tensor ${name}`);
  }
  const toWrite: TensorToWrite[] = specs.map((s) => {
    const src = tensors.get(s.name)!.data;
    const data = dtype === 'f32'
      ? () => (src instanceof Float32Array ? src : bf16ArrayToF32(src))
      : () => (src instanceof Uint16Array ? src : f32ArrayToBf16(src));
    return { name: s.name, dtype: dtype === 'f32' ? 'F32' : 'BF16', shape: s.shape, data };
  });

  const cfgOut: LlamaConfig = { ...cfg, torch_dtype: dtype === 'f32' ? 'float32' : 'bfloat16' };
  const maxShardBytes = opts.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES;
  if (existsSync(dir)) {
    // Replace only our files (each atomically); leave the tokenizer, training state, etc. in place.
    await writeSafetensorsSharded(dir, toWrite, { maxShardBytes });
    writeLlamaConfig(dir, cfgOut);
    return;
  }
  const tmpDir = tempPathFor(path.resolve(dir));
  rmSync(tmpDir, { recursive: true, force: true });
  mkdirSync(tmpDir, { recursive: true });
  try {
    writeLlamaConfig(tmpDir, cfgOut);
    await writeSafetensorsSharded(tmpDir, toWrite, { maxShardBytes });
    renameSync(tmpDir, dir);
  } catch (e) {
    rmSync(tmpDir, { recursive: true, force: true });
    throw e;
  }
}
