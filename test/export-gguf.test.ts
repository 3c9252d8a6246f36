/**
 * `wgpu-char export --format gguf`, checked two ways:
 *  - the writer's layout, read back by a small GGUF reader written here (magic, version, counts,
 *    metadata types, tensor infos, alignment), Q8_0's rounding and the q/k row permutation;
 *  - llama.cpp itself (node-llama-cpp 3.21.1 from test/peers, CPU backend) as the oracle: it loads
 *    our exports of weights/tiny and of a random grouped-query model of odd sizes, tokenizes as our
 *    tokenizer does, and its greedy continuations equal our Generator's (f32 weights on the GPU)
 *    token for token; an export with a LoRA adapter merged equals our unmerged --adapter decode;
 *    for weights/tiny in f32, f16 and q8_0, its next-token log-probabilities (f32 KV cache) are within
 *    a tolerance derived from each format's rounding (test/tolerances.ts GGUF_LOGPROBS) of those of
 *    our f32 forward.
 * test/peers is installed by .ci/run; without it the llama.cpp tests skip here, and fail with CI=true.
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeGgufHeader, GgufValueType, quantizeQ8_0, writeGguf, GGUF_ALIGNMENT } from '../src/formats/gguf.ts';
import { exportLlamaGguf, permuteRotaryRows } from '../src/formats/gguf-llama.ts';
import { loadLlamaConfig, loadLlamaModel, saveLlamaCheckpointCpu } from '../src/formats/hf-checkpoint.ts';
import { logitsAllRows } from './util/logits.ts';
import { writePeftAdapter, readPeftAdapter } from '../src/formats/peft.ts';
import { ollamaModelfile } from '../src/formats/modelfile.ts';
import { chatSettingOf, chatHeader } from '../src/gen/chat-prompt.ts';
import { Tokenizer } from '../src/data/tokenizer.ts';
import { Generator } from '../src/gen/generate.ts';
import { loraSpecs, uploadAdapter, type LoraConfig } from '../src/model/lora.ts';
import { llamaWeightSpecs } from '../src/model/weights.ts';
import { parseLlamaConfig } from '../src/model/config.ts';
import { f16BitsToF32 } from '../src/util/bf16.ts';
import { Rng } from '../src/util/random.ts';
import { GGUF_LOGPROBS } from './tolerances.ts';
import { expectUserError } from './util/user-error.ts';
import { gpu } from './util/gpu.ts';

const TINY = path.join(import.meta.dirname, '..', 'weights', 'tiny');
const PEER = path.join(import.meta.dirname, 'peers', 'node_modules', 'node-llama-cpp', 'dist', 'index.js');
const tmp = mkdtempSync(path.join(tmpdir(), 'export-gguf-'));
const noNote = () => {};

// ---------------------------------------------------------------- a GGUF reader for the tests

interface ReadGguf {
  version: number;
  kv: Map<string, { type: number; itemType?: number; value: unknown }>;
  tensors: { name: string; ne: number[]; type: number; offset: number }[];
  dataStart: number;
  fileSize: number;
}

function readGguf(file: string): ReadGguf {
  const b = readFileSync(file);
  let p = 0;
  const u32 = () => { const v = b.readUInt32LE(p); p += 4; return v; };
  const u64 = () => { const v = Number(b.readBigUInt64LE(p)); p += 8; return v; };
  const str = () => { const n = u64(); const s = b.toString('utf8', p, p + n); p += n; return s; };
  const scalar = (t: number): unknown => {
    switch (t) {
      case GgufValueType.UINT32: return u32();
      case GgufValueType.INT32: { const v = b.readInt32LE(p); p += 4; return v; }
      case GgufValueType.FLOAT32: { const v = b.readFloatLE(p); p += 4; return v; }
      case GgufValueType.BOOL: { const v = b[p]; p += 1; expect(v === 0 || v === 1).toBe(true); return v === 1; }
      case GgufValueType.STRING: return str();
      case GgufValueType.UINT64: return u64();
      default: throw new Error(`reader: value type ${t} not expected in our files`);
    }
  };
  expect(b.toString('latin1', 0, 4)).toBe('GGUF');
  p = 4;
  const version = u32();
  const nTensors = u64();
  const nKv = u64();
  const kv = new Map<string, { type: number; itemType?: number; value: unknown }>();
  for (let i = 0; i < nKv; i++) {
    const key = str();
    const type = u32();
    if (type === GgufValueType.ARRAY) {
      const itemType = u32();
      const n = u64();
      const values = Array.from({ length: n }, () => scalar(itemType));
      kv.set(key, { type, itemType, value: values });
    } else {
      kv.set(key, { type, value: scalar(type) });
    }
  }
  const tensors = [];
  for (let i = 0; i < nTensors; i++) {
    const name = str();
    const nd = u32();
    const ne = Array.from({ length: nd }, () => u64());
    tensors.push({ name, ne, type: u32(), offset: u64() });
  }
  const align = (kv.get('general.alignment')?.value as number | undefined) ?? 32;
  const dataStart = Math.ceil(p / align) * align;
  return { version, kv, tensors, dataStart, fileSize: b.length };
}

// ---------------------------------------------------------------- layout, Q8_0, permutation

describe('GGUF writer', () => {
  it('writes the v3 header, typed metadata and aligned tensor offsets that a reader reads back', () => {
    const file = path.join(tmp, 'layout.gguf');
    const a = Float32Array.from({ length: 3 * 5 }, (_, i) => i);
    const size = writeGguf(file, [
      { key: 'general.architecture', value: { type: 'string', value: 'llama' } },
      { key: 'n', value: { type: 'u32', value: 7 } },
      { key: 'eps', value: { type: 'f32', value: 1e-5 } },
      { key: 'flag', value: { type: 'bool', value: true } },
      { key: 'words', value: { type: 'array', itemType: 'string', value: ['▁a', '<0x0A>', ''] } },
      { key: 'ids', value: { type: 'array', itemType: 'i32', value: [1, -2, 3] } },
    ], [
      { name: 'a', shape: [3, 5], type: 'F32', data: () => new Uint8Array(a.buffer) },
      { name: 'b', shape: [2], type: 'F32', data: () => new Uint8Array(8) },
    ]);
    const g = readGguf(file);
    expect(g.version).toBe(3);
    expect(g.fileSize).toBe(size);
    expect([...g.kv.keys()]).toEqual(['general.architecture', 'n', 'eps', 'flag', 'words', 'ids']);
    expect(g.kv.get('n')).toEqual({ type: GgufValueType.UINT32, value: 7 });
    expect(g.kv.get('eps')!.type).toBe(GgufValueType.FLOAT32);
    expect(g.kv.get('eps')!.value).toBeCloseTo(1e-5, 10);
    expect(g.kv.get('flag')).toEqual({ type: GgufValueType.BOOL, value: true });
    expect(g.kv.get('words')).toEqual({ type: GgufValueType.ARRAY, itemType: GgufValueType.STRING, value: ['▁a', '<0x0A>', ''] });
    expect(g.kv.get('ids')).toEqual({ type: GgufValueType.ARRAY, itemType: GgufValueType.INT32, value: [1, -2, 3] });
    // ne is innermost first; the 60-byte tensor is followed by padding to the next 32-byte offset.
    expect(g.tensors).toEqual([{ name: 'a', ne: [5, 3], type: 0, offset: 0 }, { name: 'b', ne: [2], type: 0, offset: 64 }]);
    expect(g.dataStart % GGUF_ALIGNMENT).toBe(0);
    expect(g.fileSize).toBe(g.dataStart + 96);
    const back = new Float32Array(Uint8Array.from(readFileSync(file).subarray(g.dataStart, g.dataStart + 60)).buffer);
    expect([...back]).toEqual([...a]);
  });

  it('rejects duplicate keys, and Q8_0 rows that are not whole blocks', () => {
    const k = { key: 'x', value: { type: 'u32' as const, value: 1 } };
    expect(() => encodeGgufHeader([k, k], [])).toThrow(/duplicate metadata key x/);
    expect(() => encodeGgufHeader([], [{ name: 't', shape: [2, 48], type: 'Q8_0' }])).toThrow(/multiples of 32/);
  });

  it('an output that cannot be written is one line naming it', () => {
    const out = path.join(tmp, 'no-such-dir', 'x.gguf');
    expectUserError(() => writeGguf(out, [], []), out, /cannot write \(ENOENT\)/);
  });

  it('quantizes Q8_0 as ggml: d = max|x|/127 stored as f16, quants rounded half away from zero', () => {
    const x = new Float32Array(64);
    x[0] = 127; x[1] = 2.5; x[2] = -2.5; x[3] = -0.5; x[4] = 0.49; x[5] = -127;
    // Second block all zero: d = 0 and zero quants.
    const q = quantizeQ8_0(x);
    expect(q.length).toBe(68);
    const v = new DataView(q.buffer);
    expect(f16BitsToF32(v.getUint16(0, true))).toBe(1);
    expect([0, 1, 2, 3, 4, 5].map((j) => v.getInt8(2 + j))).toEqual([127, 3, -3, -1, 0, -127]);
    expect(v.getUint16(34, true)).toBe(0);
    expect([...q.subarray(36)].every((b) => b === 0)).toBe(true);
    // A scale that is not an f16: quants use the f32 d, the stored scale is f16(d).
    const y = Float32Array.from({ length: 32 }, (_, j) => (j - 16) * 0.0123);
    const qy = quantizeQ8_0(y);
    const d = Math.fround(Math.fround(16 * 0.0123) / 127);
    expect(Math.abs(f16BitsToF32(new DataView(qy.buffer).getUint16(0, true)) - d) / d).toBeLessThan(1e-3);
    expect(new Int8Array(qy.buffer, 2, 32)[0]).toBe(-127);
  });

  it('permutes q/k rows from rotate-half to adjacent pairs within each head', () => {
    // 2 heads of hd 4, 1 input: row r holds r.
    const w = Float32Array.from({ length: 8 }, (_, r) => r);
    expect([...permuteRotaryRows(w, 2, 4, 1)]).toEqual([0, 2, 1, 3, 4, 6, 5, 7]);
  });
});

describe('Ollama Modelfile', () => {
  it('has FROM, the meta prompt as SYSTEM, the turn template, stop and sampling', () => {
    const setting = chatSettingOf({ name: 'Beethoven' });
    const m = ollamaModelfile({ gguf: 'beethoven.gguf', setting, userName: 'Man', temperature: 0.5, topP: 0.95 });
    expect(m).toContain('FROM ./beethoven.gguf\n');
    const system = /SYSTEM """([^]*?)"""/.exec(m)![1]!;
    expect(system + '\n\n').toBe(chatHeader(setting));
    expect(m).toContain('Man (speaking): {{ .Content }}<|eot|>\n');
    expect(m).toContain('Beethoven (speaking): {{ .Content }}<|eot|>\n');
    expect(m).toMatch(/Beethoven \(speaking\):"""\n/);
    expect(m).toContain('PARAMETER stop <|eot|>\n');
    expect(m).toContain('PARAMETER temperature 0.5\n');
    expect(m).toContain('PARAMETER top_p 0.95\n');
  });
});

// ---------------------------------------------------------------- exports of real models

describe('export of weights/tiny', () => {
  it('writes llama metadata, the vocabulary and llama.cpp tensor names; an unsupported config is one line', () => {
    const out = path.join(tmp, 'tiny-f16.gguf');
    exportLlamaGguf({ model: TINY, out, dtype: 'f16', onNote: noNote });
    const g = readGguf(out);
    const v = (k: string) => g.kv.get(k)?.value;
    expect(v('general.architecture')).toBe('llama');
    expect(v('general.file_type')).toBe(1);
    expect([v('llama.embedding_length'), v('llama.block_count'), v('llama.feed_forward_length'), v('llama.attention.head_count'), v('llama.attention.head_count_kv'), v('llama.rope.dimension_count'), v('llama.context_length')])
      .toEqual([128, 4, 384, 4, 2, 32, 512]);
    expect(v('tokenizer.ggml.model')).toBe('llama');
    expect((v('tokenizer.ggml.tokens') as string[]).length).toBe(4000);
    expect(g.kv.get('tokenizer.ggml.token_type')!.itemType).toBe(GgufValueType.INT32);
    expect([v('tokenizer.ggml.bos_token_id'), v('tokenizer.ggml.eos_token_id'), v('tokenizer.ggml.add_bos_token')]).toEqual([1, 2, true]);
    expect(g.tensors.map((t) => t.name).slice(0, 3)).toEqual(['token_embd.weight', 'blk.0.attn_norm.weight', 'blk.0.attn_q.weight']);
    expect(g.tensors.find((t) => t.name === 'blk.0.ffn_down.weight')).toMatchObject({ ne: [384, 128], type: 1 });
    expect(g.tensors.find((t) => t.name === 'output_norm.weight')).toMatchObject({ ne: [128], type: 0 });
    for (const t of g.tensors) expect(t.offset % GGUF_ALIGNMENT).toBe(0);
  });

  it('refuses q8_0 for rows that are not whole blocks, a missing model or tokenizer, an adapter of another model', async () => {
    const dir = await makeOddModel();
    const x = path.join(tmp, 'x.gguf');
    expectUserError(() => exportLlamaGguf({ model: dir, out: x, dtype: 'q8_0', onNote: noNote }), '--dtype q8_0', /rows of 200 values, not a multiple of 32/);
    const missing = path.join(tmp, 'nope');
    expectUserError(() => exportLlamaGguf({ model: missing, out: x, dtype: 'f32' }), missing, /no such model directory/);
    const noTok = path.join(tmp, 'no-tok');
    mkdirSync(noTok);
    for (const f of ['config.json', 'model.safetensors']) cpSync(path.join(TINY, f), path.join(noTok, f));
    expectUserError(() => exportLlamaGguf({ model: noTok, out: x, dtype: 'f32' }), path.join(noTok, 'tokenizer.model'), /missing/);
    const lora = path.join(import.meta.dirname, 'fixtures', 'lora-tiny');
    expectUserError(() => exportLlamaGguf({ model: TINY, adapter: lora, out: x, dtype: 'f32', onNote: noNote }), path.join(lora, 'adapter_model.safetensors'), /shape|unexpected/);
    expect(existsSync(x)).toBe(false);
  });
});

/** A random 2-layer model with grouped-query heads (3 query heads on 1 kv head) and odd widths, using weights/tiny's tokenizer. */
let oddDir: Promise<string> | undefined;
function makeOddModel(): Promise<string> {
  oddDir ??= (async () => {
    const dir = path.join(tmp, 'odd');
    const base = JSON.parse(readFileSync(path.join(TINY, 'config.json'), 'utf8'));
    const cfg = parseLlamaConfig({ ...base, hidden_size: 96, num_attention_heads: 3, num_key_value_heads: 1, head_dim: 32, intermediate_size: 200,
      num_hidden_layers: 2, max_position_embeddings: 256, rope_theta: 5000, rms_norm_eps: 1e-6 }, 'odd');
    const rng = new Rng(7);
    const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const s of llamaWeightSpecs(cfg)) {
      const n = s.shape.reduce((x, y) => x * y, 1);
      // Outputs of std ~1 per matrix, so greedy choices are not near-ties between two implementations.
      const scale = s.shape.length === 1 ? 0.1 : 2 * Math.sqrt(3 / s.shape[1]!);
      const offset = s.shape.length === 1 ? 1 : 0;
      tensors.set(s.name, { shape: s.shape, data: Float32Array.from({ length: n }, () => offset + scale * (rng.uniform() - 0.5)) });
    }
    await saveLlamaCheckpointCpu(dir, cfg, tensors, 'f32');
    cpSync(path.join(TINY, 'tokenizer.model'), path.join(dir, 'tokenizer.model'));
    return dir;
  })();
  return oddDir;
}

// ---------------------------------------------------------------- llama.cpp as the oracle

/**
 * The part of node-llama-cpp's API these tests use, typed here so `tsc` passes where test/peers is
 * not installed (its own types would be a missing module there).
 */
interface PeerModel {
  tokenize(text: string): number[];
  readonly tokens: { readonly bos: number | null; readonly eos: number | null };
  createContext(o: { contextSize: number; threads?: number; experimentalKvCacheKeyType?: 'F32'; experimentalKvCacheValueType?: 'F32'; flashAttention?: boolean }): Promise<{ getSequence(): PeerSequence; dispose(): Promise<void> }>;
  dispose(): Promise<void>;
}
/** A token, or one with `generateNext` (the next-token distribution after it, sorted by probability). */
type PeerInput = number | [number, { generateNext: { probabilities: true; options: { temperature: number } } }];
interface PeerSequence {
  evaluate(tokens: number[], o: { temperature: number }): AsyncGenerator<number, void, void>;
  controlledEvaluate(input: PeerInput[]): Promise<(undefined | { next: { probabilities?: Map<number, number> } })[]>;
}
interface PeerLlama {
  loadModel(o: { modelPath: string }): Promise<PeerModel>;
  dispose(): Promise<void>;
}
interface Peer {
  getLlama(o: { gpu: false; build: 'never'; logLevel: string }): Promise<PeerLlama>;
  LlamaLogLevel: { error: string };
}
async function loadPeer(): Promise<Peer | null> {
  if (existsSync(PEER)) return (await import(PEER)) as Peer;
  const why = 'node-llama-cpp is not installed in test/peers (cd test/peers && npm ci --omit=optional)';
  if (process.env.CI === 'true') throw new Error(`CI=true but ${why}`);
  console.warn(`skipping the llama.cpp tests: ${why}`);
  return null;
}
const peer = await loadPeer();

const PROMPTS = [
  'Beethoven (speaking): Hello there, friend!',
  'I want you to act like Ludwig van Beethoven. The status of you is as follows:\nLocation: Vienna',
  'The music of the',
];
const NEW_TOKENS = 20;

describe.skipIf(!peer || !gpu)('llama.cpp loads our exports', () => {
  let llama: PeerLlama;
  beforeAll(async () => {
    llama = await peer!.getLlama({ gpu: false, build: 'never', logLevel: peer!.LlamaLogLevel.error });
    await makeOddModel();
  }, 120_000);
  afterAll(async () => {
    await llama?.dispose();
  });

  /** llama.cpp's greedy continuation of BOS + prompt: up to NEW_TOKENS ids, ending at EOS like ours. */
  async function llamaCppGreedy(gguf: string, prompts: string[]): Promise<{ tokenize: number[][]; out: number[][] }> {
    const model = await llama.loadModel({ modelPath: gguf });
    try {
      const tokenize: number[][] = [];
      const out: number[][] = [];
      for (const p of prompts) {
        const ids = model.tokenize(p);
        tokenize.push(ids);
        // One thread: llama.cpp's default thread pool spins on this 2-core machine (20 tokens of
        // weights/tiny took 53 s with the default, 0.02 s with one thread).
        const ctx = await model.createContext({ contextSize: 128, threads: 1 });
        const seq = ctx.getSequence();
        const got: number[] = [];
        for await (const t of seq.evaluate([model.tokens.bos!, ...ids], { temperature: 0 })) {
          got.push(t);
          if (got.length >= NEW_TOKENS || t === model.tokens.eos) break;
        }
        out.push(got);
        await ctx.dispose();
      }
      return { tokenize, out };
    } finally {
      await model.dispose();
    }
  }

  async function oursGreedy(dir: string, prompts: string[], adapterDir?: string): Promise<{ tokenize: number[][]; out: number[][] }> {
    const model = await loadLlamaModel(gpu!, dir, 'f32', gpu!.maxBindingBytes, { onNote: noNote });
    if (adapterDir) {
      const a = readPeftAdapter(adapterDir, model.cfg);
      model.adapter = uploadAdapter(gpu!, model.cfg, a.config, a.tensors);
    }
    const tok = await Tokenizer.load(path.join(dir, 'tokenizer.model'));
    const gen = await Generator.create(model, tok, { contextLength: 128, onNote: noNote });
    const out: number[][] = [];
    for (const p of prompts) {
      const r = await gen.generate(p, { maxNewTokens: NEW_TOKENS, temperature: 0, topP: 1, seed: 0, stop: [], stopOnSpeakerTag: false });
      out.push(r.tokens);
    }
    gen.destroy();
    return { tokenize: prompts.map((p) => tok.encode(p)), out };
  }

  /** Our greedy output for weights/tiny without an adapter, computed once (a decode on lavapipe takes a while). */
  let tinyOurs: Promise<{ tokenize: number[][]; out: number[][] }> | undefined;
  const oursTiny = () => (tinyOurs ??= oursGreedy(TINY, PROMPTS));

  function agreement(a: number[][], b: number[][]): number[] {
    return a.map((x, i) => {
      let k = 0;
      while (k < x.length && k < b[i]!.length && x[k] === b[i]![k]) k++;
      return k;
    });
  }

  it('weights/tiny in f32: the same token ids and the same greedy continuations, token for token', async () => {
    const out = path.join(tmp, 'tiny-f32.gguf');
    exportLlamaGguf({ model: TINY, out, dtype: 'f32', onNote: noNote });
    const extra = ['', ' leading space', 'Ünïcödé 😀 and\nnewlines\n\n  twice', '<|eot|> and <s> stay text'];
    const cpp = await llamaCppGreedy(out, PROMPTS);
    const ours = await oursTiny();
    expect(cpp.tokenize).toEqual(ours.tokenize);
    expect(cpp.out).toEqual(ours.out);
    const model = await llama.loadModel({ modelPath: out });
    const tok = await Tokenizer.load(path.join(TINY, 'tokenizer.model'));
    for (const s of extra) expect(model.tokenize(s), JSON.stringify(s)).toEqual(tok.encode(s));
    await model.dispose();
  }, 600_000);

  it('a grouped-query model of odd sizes in f32: the same greedy continuations', async () => {
    const dir = await makeOddModel();
    const out = path.join(tmp, 'odd-f32.gguf');
    exportLlamaGguf({ model: dir, out, dtype: 'f32', onNote: noNote });
    const cpp = await llamaCppGreedy(out, PROMPTS);
    const ours = await oursGreedy(dir, PROMPTS);
    expect(cpp.out).toEqual(ours.out);
  }, 600_000);

  it('weights/tiny in f16, bf16 and q8_0: loads, and greedy agrees with our f32 for at least the first 16 tokens', async () => {
    const ours = await oursTiny();
    for (const dtype of ['f16', 'bf16', 'q8_0'] as const) {
      const out = path.join(tmp, `tiny-${dtype}.gguf`);
      exportLlamaGguf({ model: TINY, out, dtype, onNote: noNote });
      const cpp = await llamaCppGreedy(out, PROMPTS);
      const agree = agreement(cpp.out, ours.out);
      console.log(`export-gguf: ${dtype}: greedy agrees with our f32 for ${agree.join(', ')} of ${NEW_TOKENS} tokens`);
      for (const k of agree) expect(k, dtype).toBeGreaterThanOrEqual(16);
    }
  }, 600_000);

  /**
   * llama.cpp's next-token log-probabilities after BOS + each prompt: node-llama-cpp's
   * `controlledEvaluate` with `generateNext.probabilities` at temperature 0 (its greedy chain leaves
   * the logits as they are; the addon returns their softmax over the whole vocabulary, in f32).
   */
  async function llamaCppNextLogprobs(gguf: string, prompts: string[], V: number): Promise<{ tokenize: number[][]; logprobs: Float64Array[] }> {
    const model = await llama.loadModel({ modelPath: gguf });
    try {
      const tokenize: number[][] = [];
      const logprobs: Float64Array[] = [];
      for (const p of prompts) {
        const ids = model.tokenize(p);
        tokenize.push(ids);
        const input: PeerInput[] = [model.tokens.bos!, ...ids];
        input[input.length - 1] = [input.at(-1) as number, { generateNext: { probabilities: true, options: { temperature: 0 } } }];
        // An f32 KV cache, and flash attention off (the plain attention path): llama.cpp's default f16
        // cache alone moves the log-probabilities of the f32 export by up to 4e-3 (measured), which
        // is not the export's error. The option is marked experimental; it works with this build.
        const ctx = await model.createContext({ contextSize: 128, threads: 1, experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32', flashAttention: false });
        const probs = (await ctx.getSequence().controlledEvaluate(input))[input.length - 1]?.next.probabilities;
        await ctx.dispose();
        if (!probs) throw new Error(`${gguf}: llama.cpp returned no probabilities for ${JSON.stringify(p)}`);
        const lp = new Float64Array(V).fill(-Infinity);
        for (const [t, pr] of probs) lp[t] = Math.log(pr);
        logprobs.push(lp);
      }
      return { tokenize, logprobs };
    } finally {
      await model.dispose();
    }
  }

  /** Our next-token log-probabilities: the f32 forward of BOS + prompt on the GPU, the last row's logits, log-softmax in f64. */
  async function oursNextLogprobs(dir: string, prompts: string[]): Promise<{ tokenize: number[][]; logprobs: Float64Array[] }> {
    const g = gpu!;
    const model = await loadLlamaModel(g, dir, 'f32', g.maxBindingBytes, { onNote: noNote });
    const tok = await Tokenizer.load(path.join(dir, 'tokenizer.model'));
    const V = model.dims.V;
    const logprobs: Float64Array[] = [];
    for (const p of prompts) {
      const ids = tok.encode(p, { bos: true });
      const last = (await logitsAllRows(model, ids)).subarray((ids.length - 1) * V);
      const m = Math.max(...last);
      const lse = m + Math.log(last.reduce((a, l) => a + Math.exp(l - m), 0));
      logprobs.push(Float64Array.from(last, (l) => l - lse));
    }
    return { tokenize: prompts.map((p) => tok.encode(p)), logprobs };
  }

  it('weights/tiny in f32, f16 and q8_0: llama.cpp\'s next-token log-probabilities within GGUF_LOGPROBS · sd(logits) of our f32 forward\'s', async () => {
    const ours = await oursNextLogprobs(TINY, PROMPTS);
    const V = ours.logprobs[0]!.length;
    for (const dtype of ['f32', 'f16', 'q8_0'] as const) {
      const out = path.join(tmp, `tiny-${dtype}-logits.gguf`);
      exportLlamaGguf({ model: TINY, out, dtype, onNote: noNote });
      const cpp = await llamaCppNextLogprobs(out, PROMPTS, V);
      expect(cpp.tokenize).toEqual(ours.tokenize);
      const rows = ours.logprobs.map((want, s) => {
        const got = cpp.logprobs[s]!;
        let maxAbs = 0;
        let at = -1;
        for (let t = 0; t < V; t++) {
          // Below e^-80, llama.cpp's f32 softmax may round a probability to 0 (its log: -Infinity).
          if (want[t]! < -80) continue;
          const d = Math.abs(got[t]! - want[t]!);
          if (!(d <= maxAbs)) [maxAbs, at] = [d, t];
        }
        // sd of the logits = sd of the log-probabilities (they differ by a constant).
        const mean = want.reduce((a, x) => a + x, 0) / V;
        const sd = Math.sqrt(want.reduce((a, x) => a + (x - mean) ** 2, 0) / V);
        // The normwise error, for the log: rms of Δ log p around its mean (the shift of log-sum-exp), over sd.
        const dMean = want.reduce((a, x, t) => a + got[t]! - x, 0) / V;
        const rel = Math.sqrt(want.reduce((a, x, t) => a + (got[t]! - x - dMean) ** 2, 0) / V) / sd;
        return { maxAbs, at, allowed: GGUF_LOGPROBS[dtype] * sd, rel };
      });
      console.log(`export-gguf: ${dtype}: max |Δ log p| ${rows.map((r) => r.maxAbs.toExponential(2)).join(', ')} (allowed ${rows.map((r) => r.allowed.toExponential(2)).join(', ')}); ` +
        `rms Δ/sd(logits) ${rows.map((r) => r.rel.toExponential(2)).join(', ')}`);
      for (const [s, r] of rows.entries()) {
        expect(r.maxAbs, `${dtype}, prompt ${s}: token ${r.at}: llama.cpp ${cpp.logprobs[s]![r.at]}, ours ${ours.logprobs[s]![r.at]}`).toBeLessThanOrEqual(r.allowed);
      }
    }
  }, 600_000);

  it('an adapter merged into the export decodes as our unmerged --adapter', async () => {
    const cfg = loadLlamaConfig(TINY);
    const c: LoraConfig = { r: 4, alpha: 8, dropout: 0, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] };
    const rng = new Rng(3);
    const tensors = new Map(loraSpecs(cfg, c).map((s) => [s.name, {
      shape: s.shape,
      // B is not zero (a trained adapter's is not): the adapter changes the continuations.
      data: Float32Array.from({ length: s.shape[0]! * s.shape[1]! }, () => 0.1 * (rng.uniform() - 0.5)),
    }]));
    const adapterDir = path.join(tmp, 'adapter');
    await writePeftAdapter(adapterDir, c, TINY, tensors);
    const out = path.join(tmp, 'tiny-lora-f32.gguf');
    exportLlamaGguf({ model: TINY, adapter: adapterDir, out, dtype: 'f32', onNote: noNote });
    const cpp = await llamaCppGreedy(out, PROMPTS);
    const ours = await oursGreedy(TINY, PROMPTS, adapterDir);
    const base = await oursTiny();
    expect(ours.out).not.toEqual(base.out);
    expect(cpp.out).toEqual(ours.out);
  }, 600_000);
});
