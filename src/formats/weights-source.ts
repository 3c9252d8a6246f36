/**
 * The weights of a checkpoint directory, whatever their file format: HF safetensors
 * (model.safetensors or index + shards) or PyTorch torch.save archives (pytorch_model.bin or
 * index + shards). Every command that takes a model directory opens it through openWeights, so a
 * directory of .bin files works wherever a safetensors one does.
 *
 * Safetensors win when a directory holds both, as in transformers (it prefers them: no pickle).
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.ts';
import { INDEX_FILE, SINGLE_FILE, SafetensorsModel, type Dtype, type Tensor } from './safetensors.ts';
import { TORCH_INDEX_FILE, TORCH_SINGLE_FILE, TorchBinModel } from './torch-bin.ts';
import { cannotOpen } from './sharded.ts';

/** What the loaders need of a checkpoint's weights: names, shapes, dtypes and data on demand. */
export interface WeightsSource {
  /** The file errors about the whole model name: the index, or the single file. */
  readonly source: string;
  names(): string[];
  has(name: string): boolean;
  info(name: string): { name: string; dtype: Dtype; shape: number[] };
  /** The file holding `name` (for error messages). */
  fileOf(name: string): { path: string };
  readTensor(name: string): Tensor;
  /** Tensor `name` as f32 values (F32, F16, BF16 exactly). */
  readF32(name: string): Float32Array<ArrayBuffer>;
  /** Tensor `name` as bf16 bits (F32, F16 rounded to nearest even). */
  readBf16(name: string): Uint16Array<ArrayBuffer>;
  close(): void;
}

/** Opens the weights of checkpoint directory `dir` (or one .safetensors / .bin file). */
export function openWeights(dir: string): WeightsSource {
  let isFile: boolean;
  try {
    isFile = statSync(dir).isFile();
  } catch (e) {
    throw cannotOpen(dir, e);
  }
  if (isFile) return dir.endsWith('.bin') ? TorchBinModel.open(dir) : SafetensorsModel.open(dir);
  if (existsSync(path.join(dir, INDEX_FILE)) || existsSync(path.join(dir, SINGLE_FILE))) return SafetensorsModel.open(dir);
  if (existsSync(path.join(dir, TORCH_INDEX_FILE)) || existsSync(path.join(dir, TORCH_SINGLE_FILE))) return TorchBinModel.open(dir);
  throw new UserError(`${dir}: no ${SINGLE_FILE}, ${INDEX_FILE}, ${TORCH_SINGLE_FILE} or ${TORCH_INDEX_FILE} (not a HF checkpoint directory)`);
}
