/**
 * The HF `LlamaConfig` (config.json of a `LlamaForCausalLM` checkpoint), typed.
 *
 * We read only what changes the math. HF config.json files carry many harmless extra keys
 * (`initializer_range`, `use_cache`, `transformers_version`, `pretraining_tp`, ...), so unknown keys
 * are ignored, but every key that would make our forward differ from transformers' is rejected with
 * a clear error instead of being silently ignored: `rope_scaling` (Llama 3.1+, linear/dynamic/yarn
 * scaling), `hidden_act` other than silu, `attention_bias`/`mlp_bias` true, a `head_dim` other than
 * hidden_size / num_attention_heads, and any `model_type` other than llama (Mistral's sliding
 * window, Qwen's biases, ... are different models).
 */
import { UserError } from '../errors.ts';

export type TorchDtype = 'float32' | 'bfloat16' | 'float16';

export interface LlamaConfig {
  /** H: width of the residual stream (required). */
  hidden_size: number;
  /** I: width of the SwiGLU MLP, gate/up are [I, H], down is [H, I] (required). */
  intermediate_size: number;
  /** L: number of decoder layers (required). */
  num_hidden_layers: number;
  /** nH: query heads; head_dim = H / nH (required). */
  num_attention_heads: number;
  /** nKV: key/value heads (GQA); query head j uses kv head j / (nH / nKV). Default: num_attention_heads. */
  num_key_value_heads: number;
  /** V: vocabulary size = rows of embed_tokens and lm_head (required). */
  vocab_size: number;
  /** Longest context the model was trained for. Default 2048 (transformers' default). */
  max_position_embeddings: number;
  /** epsilon inside RMSNorm's rsqrt(mean(x^2) + eps). Default 1e-6 (transformers' default; LLaMA-2 uses 1e-5). */
  rms_norm_eps: number;
  /** RoPE base: inv_freq[i] = 1 / theta^(2i / head_dim). Default 10000 (LLaMA-3: 500000). */
  rope_theta: number;
  /** lm_head shares embed_tokens' weight (no lm_head.weight tensor). Default false. */
  tie_word_embeddings: boolean;
  /** Beginning-of-sequence token id. Default 1 (LLaMA-1/2 sentencepiece). */
  bos_token_id: number;
  /** End-of-sequence token id(s); transformers allows a list (LLaMA-3 chat models). Default 2. */
  eos_token_id: number | number[];
  /** dtype the weights were saved in (`dtype` in transformers >= 4.56). Default float32. */
  torch_dtype: TorchDtype;
  /**
   * config.json's `architectures` when it names anything but LlamaForCausalLM (case aside: early
   * conversions wrote LLaMAForCausalLM); undefined otherwise. Like transformers' AutoModelForCausalLM,
   * model_type decides what is loaded; opening the weights says so once (hf-checkpoint.ts). A saved
   * config always says LlamaForCausalLM.
   */
  architectures?: string[];
}

/** Per-head width: hidden_size / num_attention_heads (parseLlamaConfig ensures it divides and is even). */
export function headDim(cfg: LlamaConfig): number {
  return cfg.hidden_size / cfg.num_attention_heads;
}

/** eos_token_id as a list. */
/**
 * The sizes the GPU code works with, from a config. Shape legend: H = hidden, I = intermediate,
 * L = layers, nH / nKV = query / key-value heads, hd = head dim, V = vocab.
 */
export interface LlamaDims {
  H: number;
  I: number;
  L: number;
  nH: number;
  nKV: number;
  hd: number;
  V: number;
  eps: number;
}

export function llamaDims(cfg: LlamaConfig): LlamaDims {
  return {
    H: cfg.hidden_size,
    I: cfg.intermediate_size,
    L: cfg.num_hidden_layers,
    nH: cfg.num_attention_heads,
    nKV: cfg.num_key_value_heads,
    hd: headDim(cfg),
    V: cfg.vocab_size,
    eps: cfg.rms_norm_eps,
  };
}

export function eosTokenIds(cfg: LlamaConfig): number[] {
  return Array.isArray(cfg.eos_token_id) ? [...cfg.eos_token_id] : [cfg.eos_token_id];
}

const TORCH_DTYPES: readonly TorchDtype[] = ['float32', 'bfloat16', 'float16'];

/** The most parameters a config may describe: 2^40 ≈ 1.1e12 (4 TiB in f32; the largest LLaMA, 405B, has 4.1e11). */
export const MAX_PARAMETERS = 2 ** 40;
/** The longest max_position_embeddings accepted: 2^22 = 4194304 (the longest LLaMA-type contexts published; the RoPE table is sized by it). */
export const MAX_POSITIONS = 2 ** 22;

/** Parameters of a LlamaForCausalLM of these sizes (computed, nothing allocated). */
export function llamaParameterCount(c: Pick<LlamaConfig, 'hidden_size' | 'intermediate_size' | 'num_hidden_layers' | 'num_attention_heads' |
  'num_key_value_heads' | 'vocab_size' | 'tie_word_embeddings'>): number {
  const H = c.hidden_size, hd = H / c.num_attention_heads, kv = c.num_key_value_heads * hd;
  const perLayer = 2 * H + 2 * H * H + 2 * kv * H + 3 * c.intermediate_size * H;
  return c.vocab_size * H * (c.tie_word_embeddings ? 1 : 2) + c.num_hidden_layers * perLayer + H;
}

/** Validates a parsed config.json object; `source` (the file path) starts every error message. */
export function parseLlamaConfig(json: unknown, source: string): LlamaConfig {
  const fail = (msg: string): never => {
    throw new UserError(`${source}: ${msg}`);
  };
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return fail('not a JSON object');
  const j = json as Record<string, unknown>;

  const modelType = j.model_type;
  if (modelType === undefined) fail('no "model_type" (expected "llama")');
  if (modelType !== 'llama') {
    fail(`model_type ${JSON.stringify(modelType)} is not supported (only "llama" / LlamaForCausalLM checkpoints)`);
  }

  const posInt = (key: string, def?: number): number => {
    const v = j[key] ?? def;
    if (v === undefined) return fail(`missing "${key}"`);
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) return fail(`"${key}" must be a positive integer, got ${JSON.stringify(v)}`);
    return v;
  };
  const nonNegInt = (key: string, def: number): number => {
    const v = j[key] ?? def;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) return fail(`"${key}" must be a non-negative integer, got ${JSON.stringify(v)}`);
    return v;
  };
  const posNumber = (key: string, def: number): number => {
    const v = j[key] ?? def;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) return fail(`"${key}" must be a positive number, got ${JSON.stringify(v)}`);
    return v;
  };

  const hidden_size = posInt('hidden_size');
  const intermediate_size = posInt('intermediate_size');
  const num_hidden_layers = posInt('num_hidden_layers');
  const num_attention_heads = posInt('num_attention_heads');
  const num_key_value_heads = posInt('num_key_value_heads', num_attention_heads);
  const vocab_size = posInt('vocab_size');
  const max_position_embeddings = posInt('max_position_embeddings', 2048);
  const rms_norm_eps = posNumber('rms_norm_eps', 1e-6);
  const rope_theta = posNumber('rope_theta', 10000);
  const bos_token_id = nonNegInt('bos_token_id', 1);

  const tie = j.tie_word_embeddings ?? false;
  if (typeof tie !== 'boolean') fail(`"tie_word_embeddings" must be true or false, got ${JSON.stringify(tie)}`);

  const eosRaw = j.eos_token_id ?? 2;
  const isId = (x: unknown) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
  if (!(isId(eosRaw) || (Array.isArray(eosRaw) && eosRaw.length > 0 && eosRaw.every(isId)))) {
    fail(`"eos_token_id" must be a token id or a list of them, got ${JSON.stringify(eosRaw)}`);
  }
  const eos_token_id = Array.isArray(eosRaw) ? [...(eosRaw as number[])] : (eosRaw as number);

  const dtypeRaw = j.torch_dtype ?? j.dtype ?? 'float32';
  if (!TORCH_DTYPES.includes(dtypeRaw as TorchDtype)) {
    fail(`torch_dtype ${JSON.stringify(dtypeRaw)} is not supported (expected ${TORCH_DTYPES.join(', ')})`);
  }

  if (hidden_size % num_attention_heads !== 0) {
    fail(`hidden_size ${hidden_size} is not divisible by num_attention_heads ${num_attention_heads}`);
  }
  const hd = hidden_size / num_attention_heads;
  if (hd % 2 !== 0) fail(`head_dim ${hd} (hidden_size / num_attention_heads) is odd; rotate-half RoPE needs an even head_dim`);
  if (num_attention_heads % num_key_value_heads !== 0) {
    fail(`num_attention_heads ${num_attention_heads} is not a multiple of num_key_value_heads ${num_key_value_heads}`);
  }
  if (j.head_dim != null && j.head_dim !== hd) {
    fail(`head_dim ${JSON.stringify(j.head_dim)} differs from hidden_size / num_attention_heads = ${hd} (not supported)`);
  }
  if (j.rope_scaling != null) {
    fail(`rope_scaling ${JSON.stringify(j.rope_scaling)} is not supported (only plain RoPE with rope_theta; rope_scaling must be null)`);
  }
  if (max_position_embeddings > MAX_POSITIONS) {
    fail(`max_position_embeddings ${max_position_embeddings} is beyond any LLaMA (at most ${MAX_POSITIONS} supported)`);
  }
  const params = llamaParameterCount({ hidden_size, intermediate_size, num_hidden_layers, num_attention_heads, num_key_value_heads, vocab_size, tie_word_embeddings: tie as boolean });
  if (!(params <= MAX_PARAMETERS)) {
    fail(`hidden_size ${hidden_size}, intermediate_size ${intermediate_size}, num_hidden_layers ${num_hidden_layers} and vocab_size ${vocab_size} ` +
      `describe a model of ${params.toExponential(2)} parameters, beyond any LLaMA (at most 2^40 ≈ 1.1e12 supported)`);
  }
  let architectures: string[] | undefined;
  if (j.architectures != null) {
    const a = j.architectures;
    if (!Array.isArray(a) || !a.every((x) => typeof x === 'string')) fail(`"architectures" must be a list of strings, got ${JSON.stringify(a)}`);
    const names = a as string[];
    if (!(names.length === 1 && names[0].toLowerCase() === 'llamaforcausallm')) architectures = [...names];
  }
  if (j.hidden_act !== undefined && j.hidden_act !== 'silu') {
    fail(`hidden_act ${JSON.stringify(j.hidden_act)} is not supported (only "silu")`);
  }
  for (const k of ['attention_bias', 'mlp_bias']) {
    if (j[k] !== undefined && j[k] !== false) fail(`${k} ${JSON.stringify(j[k])} is not supported (LLaMA projections have no bias)`);
  }

  return {
    hidden_size, intermediate_size, num_hidden_layers, num_attention_heads, num_key_value_heads, vocab_size,
    max_position_embeddings, rms_norm_eps, rope_theta, tie_word_embeddings: tie as boolean, bos_token_id, eos_token_id,
    torch_dtype: dtypeRaw as TorchDtype, ...(architectures ? { architectures } : {}),
  };
}

/** A complete config.json object that transformers' LlamaForCausalLM.from_pretrained accepts (keys sorted, as HF writes them). */
export function llamaConfigToJson(cfg: LlamaConfig): Record<string, unknown> {
  const obj: Record<string, unknown> = {
    architectures: ['LlamaForCausalLM'],
    attention_bias: false,
    attention_dropout: 0.0,
    bos_token_id: cfg.bos_token_id,
    eos_token_id: cfg.eos_token_id,
    head_dim: headDim(cfg),
    hidden_act: 'silu',
    hidden_size: cfg.hidden_size,
    initializer_range: 0.02,
    intermediate_size: cfg.intermediate_size,
    max_position_embeddings: cfg.max_position_embeddings,
    mlp_bias: false,
    model_type: 'llama',
    num_attention_heads: cfg.num_attention_heads,
    num_hidden_layers: cfg.num_hidden_layers,
    num_key_value_heads: cfg.num_key_value_heads,
    pretraining_tp: 1,
    rms_norm_eps: cfg.rms_norm_eps,
    rope_scaling: null,
    rope_theta: cfg.rope_theta,
    tie_word_embeddings: cfg.tie_word_embeddings,
    torch_dtype: cfg.torch_dtype,
    use_cache: true,
    vocab_size: cfg.vocab_size,
  };
  return obj;
}
