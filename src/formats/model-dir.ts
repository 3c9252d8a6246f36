/**
 * Loading a model directory for the commands that run one (chat, generate, eval, serve): the GPU
 * (its adapter reported once), the sentencepiece tokenizer and the weights, each missing piece one
 * clear error naming the path.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.ts';
import { describeGpu, type Gpu } from '../gpu/device.ts';
import { acquireGpu } from '../node/dawn.ts';
import { Tokenizer } from '../data/tokenizer.ts';
import { loadLlamaConfig, openLlamaWeights, uploadLlamaModel } from './hf-checkpoint.ts';
import type { LlamaConfig } from '../model/config.ts';
import { checkTokenizerAgainstConfig } from './hf-config.ts';
import { readPeftAdapter } from './peft.ts';
import { uploadAdapter } from '../model/lora.ts';

/**
 * Loads `dir`. Everything that needs no GPU comes first (config.json, the weights' headers, the
 * tokenizer, then `opts.check` with them, where a command checks its inputs), so a mistake is one
 * line before the GPU starts.
 */
export async function loadModelDir(dir: string, dtype: 'bf16' | 'f32',
  opts: { quiet?: boolean; check?: (loaded: { cfg: LlamaConfig; tokenizer: Tokenizer }) => void; adapter?: string } = {}) {
  if (!existsSync(dir)) throw new UserError(`${dir}: no such model directory`);
  const tokPath = path.join(dir, 'tokenizer.model');
  if (!existsSync(tokPath)) throw new UserError(`${tokPath}: missing (the model directory needs its sentencepiece tokenizer.model)`);
  const cfg = loadLlamaConfig(dir);
  // A LoRA adapter (PEFT format) is read and checked against the base before the GPU starts.
  const adapter = opts.adapter === undefined ? undefined : readPeftAdapter(opts.adapter, cfg);
  const st = openLlamaWeights(dir, cfg);
  let gpu: Gpu;
  let tokenizer: Tokenizer;
  try {
    tokenizer = await Tokenizer.load(tokPath);
    checkTokenizerAgainstConfig(cfg, tokenizer);
    opts.check?.({ cfg, tokenizer });
    gpu = await acquireGpu();
    if (!opts.quiet) {
      console.error(`wgpu-char: GPU ${describeGpu(gpu)}`);
      if (gpu.report.isSoftware) console.error('wgpu-char: note: software adapter (lavapipe on the CPU): expect CPU speeds');
    }
  } catch (e) {
    st.close();
    throw e;
  }
  const model = await uploadLlamaModel(gpu, dir, cfg, st, dtype);
  if (adapter) {
    model.adapter = uploadAdapter(gpu, cfg, adapter.config, adapter.tensors);
    if (!opts.quiet) console.error(`wgpu-char: adapter ${opts.adapter}: LoRA r ${adapter.config.r}, alpha ${adapter.config.alpha} on ${adapter.config.targets.join(', ')}`);
  }
  return { gpu, model, tokenizer };
}
