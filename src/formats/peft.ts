/**
 * LoRA adapters on disk in HF PEFT's format, so PEFT, vLLM and llama.cpp's converters load ours and
 * we load theirs: `adapter_config.json` (peft_type LORA, r, lora_alpha, target_modules,
 * lora_dropout, bias "none", task_type CAUSAL_LM, base_model_name_or_path, ...) and
 * `adapter_model.safetensors` (F32 here; PEFT names, src/model/lora.ts). Features of PEFT we do not
 * implement (rsLoRA, DoRA, per-module ranks, bias training, fan_in_fan_out, modules_to_save) are
 * rejected with one line naming the key, never ignored.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.ts';
import type { LlamaConfig } from '../model/config.ts';
import { DEFAULT_LORA_TARGETS, isLoraModule, loraSpecs, type LoraConfig, type LoraModule } from '../model/lora.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import { SafetensorsFile, writeSafetensors } from './safetensors.ts';

export const ADAPTER_CONFIG = 'adapter_config.json';
export const ADAPTER_WEIGHTS = 'adapter_model.safetensors';

/** PEFT's LoraConfig as saved by save_pretrained, for our settings (keys sorted as PEFT writes them). */
export function peftConfigJson(c: LoraConfig, baseModel: string): Record<string, unknown> {
  return {
    alpha_pattern: {},
    auto_mapping: null,
    base_model_name_or_path: baseModel,
    bias: 'none',
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    layers_pattern: null,
    layers_to_transform: null,
    lora_alpha: c.alpha,
    lora_dropout: c.dropout,
    modules_to_save: null,
    peft_type: 'LORA',
    r: c.r,
    rank_pattern: {},
    revision: null,
    target_modules: DEFAULT_LORA_TARGETS.filter((m) => c.targets.includes(m)),
    task_type: 'CAUSAL_LM',
    use_dora: false,
    use_rslora: false,
  };
}

const isEmpty = (v: unknown) => v === undefined || v === null || (typeof v === 'object' && Object.keys(v as object).length === 0);

/** Reads and checks `<dir>/adapter_config.json`; every problem is one UserError naming the file and the key. */
export function readPeftConfig(dir: string): { config: LoraConfig; baseModel: string } {
  const file = path.join(dir, ADAPTER_CONFIG);
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(`${file}: ${code === 'ENOENT' ? 'missing (an adapter directory holds adapter_config.json and adapter_model.safetensors)' : `cannot read (${code ?? (e as Error).message})`}`);
  }
  const fail = (msg: string): never => {
    throw new UserError(`${file}: ${msg}`);
  };
  if (typeof j !== 'object' || j === null || Array.isArray(j)) fail('expected a JSON object');
  if (j.peft_type !== 'LORA') fail(`peft_type ${JSON.stringify(j.peft_type)} is not supported (only "LORA")`);
  const r = j.r;
  if (typeof r !== 'number' || !Number.isInteger(r) || r < 1) fail(`r ${JSON.stringify(r)} must be a positive integer`);
  const alpha = j.lora_alpha ?? 8;
  if (typeof alpha !== 'number' || !(alpha > 0)) fail(`lora_alpha ${JSON.stringify(alpha)} must be a positive number`);
  const dropout = j.lora_dropout ?? 0;
  if (typeof dropout !== 'number' || !(dropout >= 0 && dropout < 1)) fail(`lora_dropout ${JSON.stringify(dropout)} must be in [0, 1)`);
  const t = j.target_modules;
  const targets = typeof t === 'string' ? [t] : t;
  if (!Array.isArray(targets) || targets.length === 0) fail(`target_modules ${JSON.stringify(t)} must be a non-empty list of module names`);
  for (const m of targets as unknown[]) {
    if (typeof m !== 'string' || !isLoraModule(m)) fail(`target_modules: ${JSON.stringify(m)} is not one of ${DEFAULT_LORA_TARGETS.join(', ')}`);
  }
  if ((j.bias ?? 'none') !== 'none') fail(`bias ${JSON.stringify(j.bias)} is not supported (only "none")`);
  if ((j.task_type ?? 'CAUSAL_LM') !== 'CAUSAL_LM') fail(`task_type ${JSON.stringify(j.task_type)} is not supported (only "CAUSAL_LM")`);
  for (const k of ['use_rslora', 'use_dora', 'fan_in_fan_out'] as const) if (j[k] === true) fail(`${k} true is not supported`);
  for (const k of ['rank_pattern', 'alpha_pattern', 'modules_to_save', 'layers_to_transform']) if (!isEmpty(j[k])) fail(`${k} ${JSON.stringify(j[k])} is not supported (one rank and alpha for every target)`);
  const baseModel = typeof j.base_model_name_or_path === 'string' ? j.base_model_name_or_path : '';
  return { config: { r: r as number, alpha: alpha as number, dropout: dropout as number, targets: targets as LoraModule[] }, baseModel };
}

/**
 * Reads an adapter directory for a base model of config `cfg`: its config, and every A/B tensor as
 * f32, checked against the shapes the config implies (a mismatched base is one clear error).
 */
export function readPeftAdapter(dir: string, cfg: LlamaConfig): { config: LoraConfig; baseModel: string; tensors: Map<string, Float32Array> } {
  const { config, baseModel } = readPeftConfig(dir);
  const file = path.join(dir, ADAPTER_WEIGHTS);
  if (!existsSync(file)) throw new UserError(`${file}: missing (the adapter's weights)`);
  const st = SafetensorsFile.open(file);
  try {
    const specs = loraSpecs(cfg, config);
    const expected = new Set(specs.map((s) => s.name));
    for (const name of st.names()) {
      if (!expected.has(name)) throw new UserError(`${file}: unexpected tensor ${name} (not an adapter of the targets in ${ADAPTER_CONFIG} on a ${cfg.num_hidden_layers}-layer model)`);
    }
    const tensors = new Map<string, Float32Array>();
    for (const s of specs) {
      if (!st.has(s.name)) throw new UserError(`${file}: missing tensor ${s.name}`);
      const shape = st.info(s.name).shape;
      if (shape.join(',') !== s.shape.join(',')) {
        throw new UserError(`${file}: ${s.name} has shape [${shape.join(',')}], the base model and r = ${config.r} need [${s.shape.join(',')}] (an adapter of another model?)`);
      }
      tensors.set(s.name, st.readF32(s.name));
    }
    return { config, baseModel, tensors };
  } finally {
    st.close();
  }
}

/** Writes `<dir>/adapter_config.json` and `<dir>/adapter_model.safetensors` (F32), each atomically. */
export async function writePeftAdapter(dir: string, c: LoraConfig, baseModel: string, tensors: ReadonlyMap<string, { shape: readonly number[]; data: Float32Array }>): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, ADAPTER_WEIGHTS);
  await writeSafetensors(file, [...tensors].map(([name, t]) => ({ name, dtype: 'F32' as const, shape: [...t.shape], data: t.data })), { format: 'pt' });
  writeFileAtomic(path.join(dir, ADAPTER_CONFIG), `${JSON.stringify(peftConfigJson(c, baseModel), null, 2)}\n`);
}
