/**
 * The tensors of a LLaMA in Hugging Face's names and layout: the one place that lists them, their
 * shapes, and which of them AdamW decays.
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
import { headDim, type LlamaConfig } from './config.ts';

export const EMBED_TOKENS = 'model.embed_tokens.weight';
export const FINAL_NORM = 'model.norm.weight';
export const LM_HEAD = 'lm_head.weight';

/** The output projection's tensor: lm_head, or the embedding when tie_word_embeddings. */
export function lmHeadName(cfg: LlamaConfig): string {
  return cfg.tie_word_embeddings ? EMBED_TOKENS : LM_HEAD;
}

/** HF tensor names of decoder layer `i`, by the role they play in src/model/layer.ts. */
export function layerTensorNames(i: number) {
  const p = `model.layers.${i}.`;
  return {
    inNorm: `${p}input_layernorm.weight`,
    q: `${p}self_attn.q_proj.weight`,
    k: `${p}self_attn.k_proj.weight`,
    v: `${p}self_attn.v_proj.weight`,
    o: `${p}self_attn.o_proj.weight`,
    postNorm: `${p}post_attention_layernorm.weight`,
    gate: `${p}mlp.gate_proj.weight`,
    up: `${p}mlp.up_proj.weight`,
    down: `${p}mlp.down_proj.weight`,
  };
}

export interface WeightSpec {
  name: string;
  shape: number[];
}

/** Every HF tensor a LlamaForCausalLM with config `cfg` has, with its shape, in model order. */
export function llamaWeightSpecs(cfg: LlamaConfig): WeightSpec[] {
  const V = cfg.vocab_size, H = cfg.hidden_size, I = cfg.intermediate_size;
  const hd = headDim(cfg);
  const q = cfg.num_attention_heads * hd, kv = cfg.num_key_value_heads * hd;
  const specs: WeightSpec[] = [{ name: EMBED_TOKENS, shape: [V, H] }];
  for (let i = 0; i < cfg.num_hidden_layers; i++) {
    const n = layerTensorNames(i);
    specs.push(
      { name: n.inNorm, shape: [H] },
      { name: n.q, shape: [q, H] },
      { name: n.k, shape: [kv, H] },
      { name: n.v, shape: [kv, H] },
      { name: n.o, shape: [H, q] },
      { name: n.postNorm, shape: [H] },
      { name: n.gate, shape: [I, H] },
      { name: n.up, shape: [I, H] },
      { name: n.down, shape: [H, I] },
    );
  }
  specs.push({ name: FINAL_NORM, shape: [H] });
  if (!cfg.tie_word_embeddings) specs.push({ name: LM_HEAD, shape: [V, H] });
  return specs;
}

/**
 * The HF Trainer's weight-decay rule for LLaMA (transformers ≈ 4.31, `get_decay_parameter_names`):
 * no decay for parameters of modules in ALL_LAYERNORM_LAYERS (LlamaRMSNorm: `input_layernorm`,
 * `post_attention_layernorm`, the final `norm`) and for names containing "bias" (LLaMA has none);
 * decay for every matrix and the embeddings / lm_head.
 */
export function hfDecays(name: string): boolean {
  if (name.includes('bias')) return false;
  return !/(^|\.)[a-z_]*norm\.weight$/.test(name);
}
