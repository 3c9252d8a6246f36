/**
 * Writes `weights/tiny/` (config.json + model.safetensors) as a RANDOMLY initialised LLaMA of the
 * embedded default's architecture, with the committed 4,000-piece tokenizer (scripts/make-tiny-tokenizer.sh).
 * HF's initialisation: every matrix ~ N(0, initializer_range² = 0.02²), norm weights 1.
 * Seeded: re-running writes the identical file. scripts/train-tiny.sh then replaces these
 * weights with trained ones of the same architecture.
 *
 *   npx tsx scripts/make-tiny-model.ts [--out weights/tiny] [--seed 1234]
 */
import { mkdirSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parseLlamaConfig, type LlamaConfig } from '../src/model/config.ts';
import { llamaWeightSpecs } from '../src/model/weights.ts';
import { saveLlamaCheckpointCpu } from '../src/formats/hf-checkpoint.ts';
import { Rng } from '../src/util/random.ts';

/** The embedded default: ~1.8M parameters, 4k vocabulary, GQA (4 query heads over 2 kv heads). */
export const TINY_CONFIG = {
  model_type: 'llama',
  vocab_size: 4000,
  hidden_size: 128,
  intermediate_size: 384,
  num_hidden_layers: 4,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  max_position_embeddings: 512,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  tie_word_embeddings: false,
  bos_token_id: 1,
  eos_token_id: 2,
  torch_dtype: 'bfloat16',
};

export function randomLlamaWeights(cfg: LlamaConfig, seed: number, std = 0.02): Map<string, { shape: number[]; data: Float32Array }> {
  const rng = new Rng(seed);
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const s of llamaWeightSpecs(cfg)) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    if (s.shape.length === 1) data.fill(1);
    else for (let i = 0; i < n; i++) data[i] = rng.normal() * std;
    out.set(s.name, { shape: s.shape, data });
  }
  return out;
}

async function main() {
  const { values } = parseArgs({ options: { out: { type: 'string', default: 'weights/tiny' }, seed: { type: 'string', default: '1234' } } });
  const cfg = parseLlamaConfig(TINY_CONFIG, 'TINY_CONFIG');
  mkdirSync(values.out!, { recursive: true });
  const weights = randomLlamaWeights(cfg, Number(values.seed));
  await saveLlamaCheckpointCpu(values.out!, cfg, weights, 'bf16');
  const params = [...weights.values()].reduce((a, t) => a + t.data.length, 0);
  console.log(`wrote ${values.out}: random LLaMA, ${params} parameters (bf16)`);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
