/**
 * LLaMA checkpoints on disk in HF layout (config.json + safetensors or PyTorch .bin; tensor names and shapes:
 * src/model/weights.ts): reading and writing config.json, streaming the weights of a checkpoint
 * directory onto the GPU or into CPU arrays (checked against the config), and saving one.
 */
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.ts';
import { tempPathFor, writeFileAtomic } from '../util/atomic.ts';
import { bf16ArrayToF32, f32ArrayToBf16 } from '../util/bf16.ts';
import type { Gpu } from '../gpu/device.ts';
import { withGpuErrorCheck } from '../gpu/buffers.ts';
import { llamaConfigToJson, parseLlamaConfig, type LlamaConfig } from '../model/config.ts';
import { LlamaModel } from '../model/llama.ts';
import type { ElemType, ParamBuffers } from '../model/param-buffers.ts';
import { writeSafetensorsSharded, type TensorToWrite, DEFAULT_MAX_SHARD_BYTES } from './safetensors.ts';
import { openWeights, type WeightsSource } from './weights-source.ts';
import { EMBED_TOKENS, LM_HEAD, llamaWeightSpecs, type WeightSpec } from '../model/weights.ts';
import { loadLlamaConfig, readConfigFile } from './hf-config.ts';
import { noteOnStderr, type Note } from '../notes.ts';

/** config.json's reader lives in hf-config.ts (no GPU code); its importers here keep their path. */
export { loadLlamaConfig, readConfigFile };

/** Writes `<dir>/config.json` atomically (validated first, so we never write a config we cannot load). */
export function writeLlamaConfig(dir: string, cfg: LlamaConfig): void {
  const file = path.join(dir, 'config.json');
  const json = llamaConfigToJson(cfg);
  parseLlamaConfig(json, file);
  writeFileAtomic(file, JSON.stringify(json, null, 2) + '\n');
}


/**
 * Opens the weights of checkpoint `dir` and checks their names and shapes against `cfg` (before any
 * data is read); the caller closes it. What the checkpoint says that is not used is said once on
 * `onNote`: an `architectures` naming another model than LlamaForCausalLM (loaded as a LLaMA, as
 * model_type says), an `lm_head.weight` with tie_word_embeddings true (the embedding is the output layer).
 */
export function openLlamaWeights(dir: string, cfg: LlamaConfig, opts: { onNote?: Note } = {}): WeightsSource {
  const st = openWeights(dir);
  try {
    checkLlamaTensors(st, cfg);
  } catch (e) {
    st.close();
    throw e;
  }
  const note = opts.onNote ?? noteOnStderr;
  if (cfg.architectures) {
    note(`${path.join(dir, 'config.json')}: architectures ${JSON.stringify(cfg.architectures)} is not LlamaForCausalLM: ` +
      `loading it as a LLaMA, as its model_type "llama" says (transformers' AutoModelForCausalLM does the same)`);
  }
  if (cfg.tie_word_embeddings && st.has(LM_HEAD)) {
    // transformers' tie_weights() points lm_head at embed_tokens after loading: the file's lm_head is dropped.
    note(`${st.fileOf(LM_HEAD).path}: ${LM_HEAD} is ignored: config.json has tie_word_embeddings true, ` +
      `so the output layer is ${EMBED_TOKENS} (as in transformers, which ties lm_head to it)`);
  }
  return st;
}

/**
 * Streams every weight of an opened checkpoint into GPU parameter buffers laid out by the model's
 * table, one tensor at a time (a 7B checkpoint never sits in host memory whole): f32 values into
 * f32 buffers, bf16 bits (rounded to nearest even from F32 sources) into bf16 ones. The one loader
 * of the model weights of every command, and of the trainer's f32 master weights beside its bf16 copy.
 */
export function uploadLlamaWeights(st: WeightsSource, cfg: LlamaConfig, targets: ParamBuffers[]): void {
  const unique = [...new Set(targets)];
  for (const s of llamaWeightSpecs(cfg)) {
    for (const t of unique) t.uploadTensor(t.table.get(s.name), t.elem === 'f32' ? st.readF32(s.name) : st.readBf16(s.name));
  }
}

/**
 * Loads a HF LLaMA directory (config.json + safetensors or PyTorch .bin weights) onto the GPU. Running out
 * of GPU memory is one clear error. A smaller `maxBindingBytes` than the device's splits tensors
 * into more chunks (the tests of the 7B-style chunked paths).
 */
export async function loadLlamaModel(gpu: Gpu, dir: string, dtype: ElemType, maxBindingBytes = gpu.maxBindingBytes,
  opts: { onNote?: Note } = {}): Promise<LlamaModel> {
  const cfg = loadLlamaConfig(dir);
  return uploadLlamaModel(gpu, dir, cfg, openLlamaWeights(dir, cfg, opts), dtype, maxBindingBytes);
}

/**
 * The GPU half of loadLlamaModel, for a checkpoint already opened and checked (openLlamaWeights,
 * which needs no GPU): allocates the model and uploads the weights; closes `st`.
 */
export async function uploadLlamaModel(gpu: Gpu, dir: string, cfg: LlamaConfig, st: WeightsSource, dtype: ElemType,
  maxBindingBytes = gpu.maxBindingBytes): Promise<LlamaModel> {
  try {
    const model = await withGpuErrorCheck(gpu, `${dir}: allocating the ${dtype} weights`, () => LlamaModel.allocate(gpu, cfg, dtype, maxBindingBytes));
    uploadLlamaWeights(st, cfg, [model.weights]);
    return model;
  } finally {
    st.close();
  }
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
 * Loads every weight of `cfg` from the checkpoint `dir` (safetensors or PyTorch .bin, one file or index + shards) as
 * f32 values or bf16 bits (F32 sources rounded to nearest even). Checks names and shapes against
 * llamaWeightSpecs before reading any data: a missing, unexpected or wrong-shaped tensor is one
 * UserError naming the file and the tensor. `rotary_emb.inv_freq` buffers are ignored, and so is an
 * `lm_head.weight` when tie_word_embeddings (transformers ties it to embed_tokens; said once on `onNote`).
 */
export function loadLlamaWeightsCpu(dir: string, cfg: LlamaConfig, opts: { dtype: 'f32'; onNote?: Note }): Map<string, CpuTensorF32>;
export function loadLlamaWeightsCpu(dir: string, cfg: LlamaConfig, opts: { dtype: 'bf16'; onNote?: Note }): Map<string, CpuTensorBf16>;
export function loadLlamaWeightsCpu(dir: string, cfg: LlamaConfig, opts: { dtype: WeightDtype; onNote?: Note }): Map<string, CpuTensor>;
export function loadLlamaWeightsCpu(dir: string, cfg: LlamaConfig, opts: { dtype: WeightDtype; onNote?: Note }): Map<string, CpuTensor> {
  const model = openLlamaWeights(dir, cfg, { onNote: opts.onNote });
  try {
    const specs = llamaWeightSpecs(cfg);
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

const LAYER_RE = /^model\.layers\.(\d+)\./;

/**
 * Throws if config.json's num_hidden_layers is not the checkpoint's layer count (from the tensor
 * names alone): checked before anything sized by the config is built, so a config claiming 1e9
 * layers is one line naming config.json, not a heap exhausted by a billion-entry tensor list.
 */
export function checkLayerCount(model: WeightsSource, cfg: LlamaConfig): void {
  let maxLayer = -1;
  for (const name of model.names()) {
    const m = LAYER_RE.exec(name);
    if (m) maxLayer = Math.max(maxLayer, Number(m[1]));
  }
  const layers = maxLayer + 1;
  if (layers === cfg.num_hidden_layers) return;
  const configFile = path.join(path.dirname(model.source), 'config.json');
  const has = layers === 0 ? 'has no model.layers.* tensors' : `has tensors of ${layers} layer${layers > 1 ? 's' : ''} (model.layers.0 to model.layers.${maxLayer})`;
  throw new UserError(`${configFile}: num_hidden_layers ${cfg.num_hidden_layers}, but ${model.source} ${has}`);
}

/**
 * Throws the first missing / unexpected / wrong-shaped tensor of `model` against `specs` (default:
 * the config's), after checking the layer count (checkLayerCount) before building them.
 */
export function checkLlamaTensors(model: WeightsSource, cfg: LlamaConfig, specs?: WeightSpec[]): void {
  if (!specs) {
    checkLayerCount(model, cfg);
    specs = llamaWeightSpecs(cfg);
  }
  const expected = new Map(specs.map((s) => [s.name, s.shape]));
  for (const s of specs) {
    if (!model.has(s.name)) {
      const hint = s.name === LM_HEAD ? ' (config.json has tie_word_embeddings false)' : '';
      throw new UserError(`${model.source}: missing tensor ${s.name}${hint}`);
    }
    const info = model.info(s.name);
    if (shapeStr(info.shape) !== shapeStr(s.shape)) {
      throw new UserError(`${model.fileOf(s.name).path}: ${s.name} has shape ${shapeStr(info.shape)}, config.json expects ${shapeStr(s.shape)}`);
    }
  }
  for (const name of model.names()) {
    if (expected.has(name) || IGNORED.test(name)) continue;
    if (name === LM_HEAD && cfg.tie_word_embeddings) continue;
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
