// HF LlamaConfig parsing (src/model/config.ts): defaults, real-world configs, every rejection as a
// one-line UserError naming config.json, and write -> load round trips.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { eosTokenIds, headDim, llamaConfigToJson, parseLlamaConfig, type LlamaConfig } from '../src/model/config.ts';
import { loadLlamaConfig, writeLlamaConfig } from '../src/formats/hf-checkpoint.ts';
import { checkTokenizerAgainstConfig } from '../src/formats/hf-config.ts';
import { expectUserError } from './util/user-error.ts';

const FIXTURE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'llama-tiny');

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'wgpu-char-cfg-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// meta-llama/Llama-2-7b-hf's config.json, as published.
const LLAMA2_7B = {
  _name_or_path: 'meta-llama/Llama-2-7b-hf', architectures: ['LlamaForCausalLM'], bos_token_id: 1, eos_token_id: 2,
  hidden_act: 'silu', hidden_size: 4096, initializer_range: 0.02, intermediate_size: 11008, max_position_embeddings: 4096,
  model_type: 'llama', num_attention_heads: 32, num_hidden_layers: 32, num_key_value_heads: 32, pretraining_tp: 1,
  rms_norm_eps: 1e-5, rope_scaling: null, tie_word_embeddings: false, torch_dtype: 'float16',
  transformers_version: '4.31.0.dev0', use_cache: true, vocab_size: 32000,
};

const MINIMAL = { model_type: 'llama', hidden_size: 64, intermediate_size: 100, num_hidden_layers: 2, num_attention_heads: 4, vocab_size: 50 };

describe('parseLlamaConfig', () => {
  it('reads the fixture config.json', () => {
    const cfg = loadLlamaConfig(FIXTURE);
    const raw = JSON.parse(readFileSync(path.join(FIXTURE, 'config.json'), 'utf8'));
    for (const k of ['hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads', 'num_key_value_heads',
      'vocab_size', 'max_position_embeddings', 'rms_norm_eps', 'rope_theta', 'tie_word_embeddings', 'bos_token_id', 'eos_token_id', 'torch_dtype'] as const) {
      expect(cfg[k], k).toEqual(raw[k]);
    }
    expect(headDim(cfg)).toBe(raw.hidden_size / raw.num_attention_heads);
  });

  it('fills transformers defaults for absent optional keys', () => {
    const cfg = parseLlamaConfig(MINIMAL, 'x/config.json');
    const { model_type: _, ...dims } = MINIMAL;
    const want: LlamaConfig = {
      ...dims, num_key_value_heads: 4, max_position_embeddings: 2048, rms_norm_eps: 1e-6,
      rope_theta: 10000, tie_word_embeddings: false, bos_token_id: 1, eos_token_id: 2, torch_dtype: 'float32',
    };
    expect(cfg).toStrictEqual(want);
    expect(headDim(cfg)).toBe(16);
    // null means "default" in HF configs too.
    expect(parseLlamaConfig({ ...MINIMAL, num_key_value_heads: null }, 'c').num_key_value_heads).toBe(4);
  });

  it('accepts real configs: Llama-2-7B, GQA, eos lists, the newer `dtype` key, extra keys', () => {
    const c = parseLlamaConfig(LLAMA2_7B, 'c');
    expect([c.hidden_size, headDim(c), c.num_key_value_heads, c.rms_norm_eps, c.torch_dtype]).toEqual([4096, 128, 32, 1e-5, 'float16']);
    const g = parseLlamaConfig({ ...LLAMA2_7B, num_key_value_heads: 8, eos_token_id: [128001, 128009], rope_theta: 500000, dtype: 'bfloat16', torch_dtype: undefined }, 'c');
    expect(g.num_key_value_heads).toBe(8);
    expect(eosTokenIds(g)).toEqual([128001, 128009]);
    expect(eosTokenIds(c)).toEqual([2]);
    expect(g.rope_theta).toBe(500000);
    expect(g.torch_dtype).toBe('bfloat16');
  });

  it('rejects what would silently change the math, with a clear one-line error', () => {
    const f = 'ckpt/config.json';
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ ...MINIMAL, model_type: 'mistral' }, /model_type "mistral" is not supported \(only "llama"/],
      [{ ...MINIMAL, model_type: undefined }, /no "model_type"/],
      [{ ...MINIMAL, rope_scaling: { rope_type: 'llama3', factor: 8.0 } }, /rope_scaling \{"rope_type":"llama3","factor":8\} is not supported/],
      [{ ...MINIMAL, hidden_size: 45, num_attention_heads: 6 }, /hidden_size 45 is not divisible by num_attention_heads 6/],
      [{ ...MINIMAL, num_attention_heads: 4, num_key_value_heads: 3 }, /num_attention_heads 4 is not a multiple of num_key_value_heads 3/],
      [{ ...MINIMAL, hidden_size: 30, num_attention_heads: 6 }, /head_dim 5 .* is odd/],
      [{ ...MINIMAL, head_dim: 32 }, /head_dim 32 differs from hidden_size \/ num_attention_heads = 16/],
      [{ ...MINIMAL, hidden_act: 'gelu' }, /hidden_act "gelu" is not supported/],
      [{ ...MINIMAL, attention_bias: true }, /attention_bias true is not supported/],
      [{ ...MINIMAL, mlp_bias: true }, /mlp_bias true is not supported/],
      [{ ...MINIMAL, hidden_size: undefined }, /missing "hidden_size"/],
      [{ ...MINIMAL, vocab_size: -3 }, /"vocab_size" must be a positive integer, got -3/],
      [{ ...MINIMAL, num_hidden_layers: 2.5 }, /"num_hidden_layers" must be a positive integer/],
      [{ ...MINIMAL, rms_norm_eps: 0 }, /"rms_norm_eps" must be a positive number/],
      [{ ...MINIMAL, tie_word_embeddings: 'yes' }, /"tie_word_embeddings" must be true or false/],
      [{ ...MINIMAL, eos_token_id: [] }, /"eos_token_id" must be a token id or a list/],
      [{ ...MINIMAL, torch_dtype: 'float64' }, /torch_dtype "float64" is not supported/],
    ];
    for (const [json, re] of cases) expectUserError(() => parseLlamaConfig(json, f), f, re);
    expectUserError(() => parseLlamaConfig([1], f), f, /not a JSON object/);
  });

  it('refuses absurd sizes at once, naming them (no allocation sized by them)', () => {
    const f = 'ckpt/config.json';
    const t0 = performance.now();
    expectUserError(() => parseLlamaConfig({ ...LLAMA2_7B, num_hidden_layers: 1_000_000_000 }, f), f,
      /num_hidden_layers 1000000000 .*parameters.*2\^40/);
    expectUserError(() => parseLlamaConfig({ ...MINIMAL, vocab_size: 2 ** 40 }, f), f, /vocab_size 1099511627776 .*parameters/);
    expectUserError(() => parseLlamaConfig({ ...MINIMAL, max_position_embeddings: 1_000_000_000 }, f), f,
      /max_position_embeddings 1000000000 is beyond any LLaMA \(at most 4194304/);
    expect(performance.now() - t0).toBeLessThan(1000);
    // The largest real ones stay accepted: a 405B-sized LLaMA, a 1M-token context.
    const big = parseLlamaConfig({ ...LLAMA2_7B, hidden_size: 16384, intermediate_size: 53248, num_hidden_layers: 126,
      num_attention_heads: 128, num_key_value_heads: 8, vocab_size: 128256, max_position_embeddings: 1_048_576 }, f);
    expect(big.num_hidden_layers).toBe(126);
  });

  it('keeps an `architectures` naming another model than LlamaForCausalLM (to be reported), not ours', () => {
    expect(parseLlamaConfig(LLAMA2_7B, 'c').architectures).toBeUndefined();
    expect(parseLlamaConfig(MINIMAL, 'c').architectures).toBeUndefined();
    // Early conversions (decapoda-research/llama-7b-hf) spelled it LLaMAForCausalLM: the same model.
    expect(parseLlamaConfig({ ...LLAMA2_7B, architectures: ['LLaMAForCausalLM'] }, 'c').architectures).toBeUndefined();
    expect(parseLlamaConfig({ ...LLAMA2_7B, architectures: ['MistralForCausalLM'] }, 'c').architectures).toEqual(['MistralForCausalLM']);
    expectUserError(() => parseLlamaConfig({ ...MINIMAL, architectures: 'LlamaForCausalLM' }, 'c'), 'c', /"architectures" must be a list of strings/);
  });
});

describe('loadLlamaConfig / writeLlamaConfig', () => {
  it('reports a missing file or bad JSON naming config.json', () => {
    const dir = path.join(tmp, 'nocfg');
    mkdirSync(dir);
    const file = path.join(dir, 'config.json');
    expectUserError(() => loadLlamaConfig(dir), file, /cannot read \(no such file/);
    writeFileSync(file, '{"model_type": "llama",');
    expectUserError(() => loadLlamaConfig(dir), file, /invalid JSON/);
  });

  it('round-trips and writes a complete HF config.json', () => {
    const dir = path.join(tmp, 'out');
    mkdirSync(dir);
    const cfg = parseLlamaConfig({ ...LLAMA2_7B, num_key_value_heads: 8, eos_token_id: [2, 7], rope_theta: 500000, tie_word_embeddings: true }, 'c');
    writeLlamaConfig(dir, cfg);
    expect(loadLlamaConfig(dir)).toEqual(cfg);
    const json = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8'));
    expect(json).toMatchObject({
      architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_act: 'silu', rope_scaling: null, attention_bias: false,
      mlp_bias: false, head_dim: 128, num_key_value_heads: 8, rope_theta: 500000, tie_word_embeddings: true, eos_token_id: [2, 7],
    });
    expect(Object.keys(json)).toEqual(Object.keys(json).sort());
    expect(llamaConfigToJson(cfg)).toEqual(json);
  });

  it('refuses to write a config it could not load back', () => {
    const dir = path.join(tmp, 'badout');
    mkdirSync(dir);
    const bad = { ...parseLlamaConfig(MINIMAL, 'c'), num_key_value_heads: 3 };
    expectUserError(() => writeLlamaConfig(dir, bad), path.join(dir, 'config.json'), /not a multiple of num_key_value_heads 3/);
  });
});

describe('checkTokenizerAgainstConfig', () => {
  it('a tokenizer larger than vocab_size is one line; a BOS/EOS config.json disagrees with is said once each', async () => {
    const { Tokenizer } = await import('../src/data/tokenizer.ts');
    const tok = await Tokenizer.load('weights/tiny/tokenizer.model');
    const cfg = loadLlamaConfig('weights/tiny');
    const notes: string[] = [];
    checkTokenizerAgainstConfig(cfg, tok, (l) => notes.push(l));
    expect(notes).toEqual([]);
    expectUserError(() => checkTokenizerAgainstConfig({ ...cfg, vocab_size: 100 }, tok, () => {}), 'weights/tiny/tokenizer.model',
      /^weights\/tiny\/tokenizer\.model: 4000 pieces, but config\.json's vocab_size is 100$/);
    checkTokenizerAgainstConfig({ ...cfg, bos_token_id: 7, eos_token_id: [8, 9] }, tok, (l) => notes.push(l));
    expect(notes).toEqual([
      `weights/tiny/config.json: bos_token_id 7 is not tokenizer.model's BOS (${tok.bosId}): prompts start with the tokenizer's, as transformers' tokenizer does`,
      `weights/tiny/config.json: eos_token_id [8,9] does not include tokenizer.model's EOS (${tok.eosId}), which training appends: generation stops only at [8,9]`,
    ]);
  });
});

