/**
 * A HF LLaMA directory (config.json, safetensors, sentencepiece tokenizer.model), optionally with a
 * LoRA adapter merged in, as one GGUF file llama.cpp loads as its `llama` architecture: the
 * architecture's metadata, the sentencepiece vocabulary, llama.cpp's tensor names, and q/k rows
 * permuted to the pair order llama.cpp's rotary embedding uses. Tensors stream one at a time from
 * the checkpoint to the file (src/formats/gguf.ts).
 *
 * Why the permutation: HF's rotary embedding rotates element d of a head with element d + hd/2
 * (rotate-half); llama.cpp's (normal, non-NeoX mode, which its llama architecture uses) rotates
 * adjacent pairs (2i, 2i+1). Reordering the rows of q_proj and k_proj within each head, row
 * j·hd/2 + i → 2i + j, makes llama.cpp compute the same attention scores (q·k is unchanged by a
 * permutation applied to both).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.ts';
import { headDim, type LlamaConfig } from '../model/config.ts';
import { adapterNames, loraScale, mergeLora } from '../model/lora.ts';
import { EMBED_TOKENS, FINAL_NORM, LM_HEAD, layerTensorNames, llamaWeightSpecs } from '../model/weights.ts';
import { ModelType, parseSentencePieceModel, PieceType } from '../data/sentencepiece-model.ts';
import { noteOnStderr, type Note } from '../notes.ts';
import { loadLlamaConfig, openLlamaWeights } from './hf-checkpoint.ts';
import { readPeftAdapter } from './peft.ts';
import { encodeTensor, Q8_0_BLOCK, writeGguf, type GgmlTypeName, type GgufKv, type GgufTensorToWrite } from './gguf.ts';

export const GGUF_DTYPES = ['f32', 'f16', 'bf16', 'q8_0'] as const;
export type GgufDtype = (typeof GGUF_DTYPES)[number];

/** llama.cpp's `general.file_type` (its LLAMA_FTYPE enum) per dtype: what most of the tensors are. */
const FILE_TYPE: Record<GgufDtype, number> = { f32: 0, f16: 1, q8_0: 7, bf16: 32 };
const MATRIX_TYPE: Record<GgufDtype, GgmlTypeName> = { f32: 'F32', f16: 'F16', bf16: 'BF16', q8_0: 'Q8_0' };

/** llama.cpp's name of each HF tensor of decoder layer `i`. */
function layerGgufNames(i: number): [string, string][] {
  const n = layerTensorNames(i);
  const b = `blk.${i}.`;
  return [
    [n.inNorm, `${b}attn_norm.weight`],
    [n.q, `${b}attn_q.weight`],
    [n.k, `${b}attn_k.weight`],
    [n.v, `${b}attn_v.weight`],
    [n.o, `${b}attn_output.weight`],
    [n.postNorm, `${b}ffn_norm.weight`],
    [n.gate, `${b}ffn_gate.weight`],
    [n.up, `${b}ffn_up.weight`],
    [n.down, `${b}ffn_down.weight`],
  ];
}

/** HF name → llama.cpp name, for every weight of `cfg` (no output.weight when the embeddings are tied: llama.cpp then uses token_embd). */
export function ggufTensorNames(cfg: LlamaConfig): Map<string, string> {
  const m = new Map<string, string>([[EMBED_TOKENS, 'token_embd.weight']]);
  for (let i = 0; i < cfg.num_hidden_layers; i++) for (const [hf, g] of layerGgufNames(i)) m.set(hf, g);
  m.set(FINAL_NORM, 'output_norm.weight');
  if (!cfg.tie_word_embeddings) m.set(LM_HEAD, 'output.weight');
  return m;
}

/**
 * The rows of a [heads·hd, in] projection reordered within each head from HF's rotate-half order
 * to llama.cpp's adjacent pairs: new row 2i + j (j ∈ {0, 1}) is old row j·hd/2 + i.
 */
export function permuteRotaryRows(w: Float32Array, heads: number, hd: number, inFeatures: number): Float32Array {
  const out = new Float32Array(w.length);
  const half = hd / 2;
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const src = (h * hd + j * half + i) * inFeatures;
        out.set(w.subarray(src, src + inFeatures), (h * hd + 2 * i + j) * inFeatures);
      }
    }
  }
  return out;
}

export interface GgufVocab {
  tokens: string[];
  scores: number[];
  types: number[];
  bosId: number;
  eosId: number;
  unkId: number;
  padId: number;
  addSpacePrefix: boolean;
}

/**
 * The sentencepiece vocabulary as llama.cpp's `llama` (SPM) tokenizer reads it. Its tokenizer is
 * sentencepiece BPE with whitespace escaping and no normalisation rules, so a model it would
 * tokenize differently (unigram, a normalisation charsmap, extra-whitespace removal) is refused.
 * A vocab_size above the piece count is padded with unused `[PAD<id>]` pieces (llama.cpp needs one
 * piece per embedding row).
 */
export function ggufVocab(file: string, cfg: LlamaConfig): GgufVocab {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(`${file}: ${code === 'ENOENT' ? 'missing (GGUF export needs the model\'s sentencepiece tokenizer.model)' : `cannot read (${code ?? (e as Error).message})`}`);
  }
  const sp = parseSentencePieceModel(bytes, file);
  const ts = sp.trainerSpec, ns = sp.normalizerSpec;
  if (ts.modelType !== ModelType.BPE) throw new UserError(`${file}: a sentencepiece ${ts.modelType === ModelType.UNIGRAM ? 'unigram' : `type ${ts.modelType}`} model; GGUF export supports BPE models (llama.cpp's llama tokenizer is sentencepiece BPE)`);
  if (ns.precompiledCharsmapLength > 0) throw new UserError(`${file}: has normalisation rules ("${ns.name}"), which llama.cpp's llama tokenizer does not apply: GGUF export supports identity normalisation only`);
  if (ns.removeExtraWhitespaces) throw new UserError(`${file}: remove_extra_whitespaces is on, which llama.cpp's llama tokenizer does not do: GGUF export would tokenize differently`);
  if (!ns.escapeWhitespaces) throw new UserError(`${file}: escape_whitespaces is off; llama.cpp's llama tokenizer always writes spaces as ▁`);
  if (sp.pieces.length > cfg.vocab_size) throw new UserError(`${file}: ${sp.pieces.length} pieces, but config.json's vocab_size is ${cfg.vocab_size}`);
  const tokens = sp.pieces.map((p) => p.piece);
  const scores = sp.pieces.map((p) => p.score);
  const types = sp.pieces.map((p) => p.type as number);
  for (let id = tokens.length; id < cfg.vocab_size; id++) {
    tokens.push(`[PAD${id}]`);
    scores.push(-1000);
    types.push(PieceType.UNUSED);
  }
  const idOf = (piece: string, type: number) => sp.pieces.findIndex((p) => p.piece === piece && p.type === type);
  return {
    tokens, scores, types,
    bosId: idOf(ts.bosPiece, PieceType.CONTROL),
    eosId: idOf(ts.eosPiece, PieceType.CONTROL),
    unkId: idOf(ts.unkPiece, PieceType.UNKNOWN),
    padId: idOf(ts.padPiece, PieceType.CONTROL),
    addSpacePrefix: ns.addDummyPrefix,
  };
}

/** The metadata of a llama-architecture GGUF. */
export function llamaGgufMetadata(cfg: LlamaConfig, vocab: GgufVocab, name: string, dtype: GgufDtype): GgufKv[] {
  const u32 = (key: string, value: number): GgufKv => ({ key, value: { type: 'u32', value } });
  const f32 = (key: string, value: number): GgufKv => ({ key, value: { type: 'f32', value } });
  const kvs: GgufKv[] = [
    { key: 'general.architecture', value: { type: 'string', value: 'llama' } },
    { key: 'general.name', value: { type: 'string', value: name } },
    u32('general.file_type', FILE_TYPE[dtype]),
    u32('general.alignment', 32),
    u32('llama.vocab_size', cfg.vocab_size),
    u32('llama.context_length', cfg.max_position_embeddings),
    u32('llama.embedding_length', cfg.hidden_size),
    u32('llama.block_count', cfg.num_hidden_layers),
    u32('llama.feed_forward_length', cfg.intermediate_size),
    u32('llama.rope.dimension_count', headDim(cfg)),
    u32('llama.attention.head_count', cfg.num_attention_heads),
    u32('llama.attention.head_count_kv', cfg.num_key_value_heads),
    f32('llama.attention.layer_norm_rms_epsilon', cfg.rms_norm_eps),
    f32('llama.rope.freq_base', cfg.rope_theta),
  ];
  if (dtype === 'q8_0') kvs.push(u32('general.quantization_version', 2));
  kvs.push(
    { key: 'tokenizer.ggml.model', value: { type: 'string', value: 'llama' } },
    { key: 'tokenizer.ggml.tokens', value: { type: 'array', itemType: 'string', value: vocab.tokens } },
    { key: 'tokenizer.ggml.scores', value: { type: 'array', itemType: 'f32', value: vocab.scores } },
    { key: 'tokenizer.ggml.token_type', value: { type: 'array', itemType: 'i32', value: vocab.types } },
  );
  if (vocab.bosId >= 0) kvs.push(u32('tokenizer.ggml.bos_token_id', vocab.bosId));
  if (vocab.eosId >= 0) kvs.push(u32('tokenizer.ggml.eos_token_id', vocab.eosId));
  if (vocab.unkId >= 0) kvs.push(u32('tokenizer.ggml.unknown_token_id', vocab.unkId));
  if (vocab.padId >= 0) kvs.push(u32('tokenizer.ggml.padding_token_id', vocab.padId));
  kvs.push(
    // LLaMA prepends BOS to every sequence and appends no EOS (as our Generator and trainer do).
    { key: 'tokenizer.ggml.add_bos_token', value: { type: 'bool', value: vocab.bosId >= 0 } },
    { key: 'tokenizer.ggml.add_eos_token', value: { type: 'bool', value: false } },
    { key: 'tokenizer.ggml.add_space_prefix', value: { type: 'bool', value: vocab.addSpacePrefix } },
  );
  return kvs;
}

export interface ExportGgufOptions {
  model: string;
  adapter?: string;
  out: string;
  dtype: GgufDtype;
  onNote?: Note;
}

export interface ExportGgufResult {
  bytes: number;
  tensors: number;
}

/**
 * Exports `opts.model` (with `opts.adapter` merged: W + (alpha/r)·B·A per target) to the GGUF file
 * `opts.out`. Everything is checked before the file is opened (config, tokenizer, adapter, Q8_0's
 * row sizes); every problem is one UserError.
 */
export function exportLlamaGguf(opts: ExportGgufOptions): ExportGgufResult {
  const { model: dir, dtype } = opts;
  if (!existsSync(dir)) throw new UserError(`${dir}: no such model directory`);
  const cfg = loadLlamaConfig(dir);
  const hd = headDim(cfg);
  const vocab = ggufVocab(path.join(dir, 'tokenizer.model'), cfg);
  const adapter = opts.adapter === undefined ? undefined : readPeftAdapter(opts.adapter, cfg);
  const names = ggufTensorNames(cfg);
  const specs = llamaWeightSpecs(cfg).filter((s) => names.has(s.name));
  const typeOf = (shape: readonly number[]): GgmlTypeName => (shape.length === 1 ? 'F32' : MATRIX_TYPE[dtype]);
  if (dtype === 'q8_0') {
    // llama.cpp quantizes along rows: each 2-D weight's input width must be whole blocks.
    const bad = specs.find((s) => s.shape.length === 2 && s.shape[1]! % Q8_0_BLOCK !== 0);
    if (bad) throw new UserError(`--dtype q8_0: ${bad.name} has rows of ${bad.shape[1]} values, not a multiple of ${Q8_0_BLOCK} (Q8_0's block): export this model in f16, bf16 or f32`);
  }
  const rotary = new Map<string, number>();
  for (let i = 0; i < cfg.num_hidden_layers; i++) {
    const n = layerTensorNames(i);
    rotary.set(n.q, cfg.num_attention_heads);
    rotary.set(n.k, cfg.num_key_value_heads);
  }
  const st = openLlamaWeights(dir, cfg, { onNote: opts.onNote ?? noteOnStderr });
  try {
    const tensors: GgufTensorToWrite[] = specs.map((s) => ({
      name: names.get(s.name)!,
      shape: s.shape,
      type: typeOf(s.shape),
      data: () => {
        let w: Float32Array = st.readF32(s.name);
        if (adapter) {
          const a = adapterNames(s.name);
          const A = adapter.tensors.get(a.a), B = adapter.tensors.get(a.b);
          if (A && B) mergeLora(w, s.shape[0]!, s.shape[1]!, A, B, adapter.config.r, loraScale(adapter.config));
        }
        const heads = rotary.get(s.name);
        if (heads !== undefined) w = permuteRotaryRows(w, heads, hd, s.shape[1]!);
        return encodeTensor(w, typeOf(s.shape));
      },
    }));
    const name = path.basename(path.resolve(dir));
    const bytes = writeGguf(opts.out, llamaGgufMetadata(cfg, vocab, name, dtype), tensors);
    return { bytes, tensors: tensors.length };
  } finally {
    st.close();
  }
}
