// LLaMA weights in HF layout on the CPU (src/formats/hf-checkpoint.ts): the name/shape table, loading the
// PyTorch-written fixture as f32 and bf16, save -> load round trips (single file and shards), and a
// one-line UserError naming file and tensor for missing / unexpected / wrong-shaped tensors.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadLlamaConfig } from '../src/formats/hf-checkpoint.ts';
import { llamaParameterCount, parseLlamaConfig, type LlamaConfig } from '../src/model/config.ts';
import { loadLlamaWeightsCpu, saveLlamaCheckpointCpu, type CpuTensorF32 } from '../src/formats/hf-checkpoint.ts';
import { llamaWeightSpecs } from '../src/model/weights.ts';
import { INDEX_FILE, SafetensorsFile, writeSafetensors, type TensorToWrite } from '../src/formats/safetensors.ts';
import { bf16ArrayToF32, f32ArrayToBf16 } from '../src/util/bf16.ts';
import { expectUserError } from './util/user-error.ts';

const FIXTURE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'llama-tiny');
interface WeightCheck { shape: number[]; sum: number; abs_sum: number; first: number[]; bf16_first: number[]; bf16_bits_sum: number }
const golden = JSON.parse(readFileSync(path.join(FIXTURE, 'golden.json'), 'utf8')) as { weights: Record<string, WeightCheck> };

let tmp: string;
let cfg: LlamaConfig;
let fixtureF32: Map<string, CpuTensorF32>;
beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'wgpu-char-w-'));
  cfg = loadLlamaConfig(FIXTURE);
  fixtureF32 = loadLlamaWeightsCpu(FIXTURE, cfg, { dtype: 'f32' });
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A checkpoint dir with the fixture's config and the given tensors (F32), for damage tests. */
async function checkpointWith(name: string, edit: (ts: TensorToWrite[]) => TensorToWrite[], config: object = cfg): Promise<string> {
  const dir = path.join(tmp, name);
  mkdirSync(dir);
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...config, model_type: 'llama' }));
  const ts: TensorToWrite[] = [...fixtureF32].map(([n, t]) => ({ name: n, dtype: 'F32', shape: t.shape, data: t.data }));
  await writeSafetensors(path.join(dir, 'model.safetensors'), edit(ts));
  return dir;
}

describe('llamaWeightSpecs', () => {
  it('lists the HF names and shapes, in model order, matching the PyTorch fixture', () => {
    const specs = llamaWeightSpecs(cfg);
    expect(specs.map((s) => s.name)).toEqual(Object.keys(golden.weights));
    for (const s of specs) expect(s.shape, s.name).toEqual(golden.weights[s.name].shape);
    const byName = new Map(specs.map((s) => [s.name, s.shape]));
    // GQA: k/v have nKV * head_dim = 2 * 10 rows.
    expect(byName.get('model.layers.1.self_attn.k_proj.weight')).toEqual([20, 60]);
    expect(byName.get('model.layers.1.mlp.down_proj.weight')).toEqual([60, 121]);
  });

  it('drops lm_head when embeddings are tied; counts Llama-2-7B parameters right', () => {
    const tied = llamaWeightSpecs({ ...cfg, tie_word_embeddings: true });
    expect(tied.length).toBe(llamaWeightSpecs(cfg).length - 1);
    expect(tied.some((s) => s.name === 'lm_head.weight')).toBe(false);
    const l2 = parseLlamaConfig({ model_type: 'llama', hidden_size: 4096, intermediate_size: 11008, num_hidden_layers: 32,
      num_attention_heads: 32, vocab_size: 32000 }, 'c');
    const params = llamaWeightSpecs(l2).reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1), 0);
    expect(params).toBe(6_738_415_616); // the published size of Llama-2-7b
    // parseLlamaConfig's bound counts them the same way, without building the list.
    expect(llamaParameterCount(l2)).toBe(params);
    for (const c of [cfg, { ...cfg, tie_word_embeddings: true }]) {
      expect(llamaParameterCount(c)).toBe(llamaWeightSpecs(c).reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1), 0));
    }
  });
});

describe('loadLlamaWeightsCpu on the PyTorch fixture', () => {
  it('f32: the values the script wrote', () => {
    expect([...fixtureF32.keys()]).toEqual(Object.keys(golden.weights));
    for (const [name, t] of fixtureF32) {
      const w = golden.weights[name];
      expect(t.shape).toEqual(w.shape);
      expect(t.data).toBeInstanceOf(Float32Array);
      expect([...t.data.subarray(0, 6)]).toEqual(w.first.map(Math.fround));
      const sum = t.data.reduce((a, v) => a + v, 0);
      expect(Math.abs(sum - w.sum)).toBeLessThan(1e-9 * w.abs_sum);
    }
  });

  it('bf16: the bit patterns torch rounds to', () => {
    const b = loadLlamaWeightsCpu(FIXTURE, cfg, { dtype: 'bf16' });
    for (const [name, t] of b) {
      const w = golden.weights[name];
      expect(t.data).toBeInstanceOf(Uint16Array);
      expect([...t.data.subarray(0, 6)]).toEqual(w.bf16_first);
      expect(t.data.reduce((a, v) => a + v, 0), name).toBe(w.bf16_bits_sum);
    }
  });
});

describe('saveLlamaCheckpointCpu', () => {
  it('f32 and bf16 round trips; config.json records the dtype', async () => {
    const d32 = path.join(tmp, 'save-f32');
    await saveLlamaCheckpointCpu(d32, cfg, fixtureF32, 'f32');
    expect(readdirSync(d32).sort()).toEqual(['config.json', 'model.safetensors']);
    expect(loadLlamaConfig(d32)).toEqual(cfg);
    const back = loadLlamaWeightsCpu(d32, cfg, { dtype: 'f32' });
    for (const [n, t] of fixtureF32) expect([...back.get(n)!.data], n).toEqual([...t.data]);

    const d16 = path.join(tmp, 'save-bf16');
    await saveLlamaCheckpointCpu(d16, cfg, fixtureF32, 'bf16');
    expect(loadLlamaConfig(d16).torch_dtype).toBe('bfloat16');
    const f = SafetensorsFile.open(path.join(d16, 'model.safetensors'));
    expect(f.info('model.norm.weight').dtype).toBe('BF16');
    f.close();
    const b = loadLlamaWeightsCpu(d16, { ...cfg, torch_dtype: 'bfloat16' }, { dtype: 'bf16' });
    for (const [n, t] of b) expect(t.data.reduce((a, v) => a + v, 0), n).toBe(golden.weights[n].bf16_bits_sum);
    // bf16 bits in, f32 out: widened exactly.
    const d16to32 = path.join(tmp, 'save-bf16-as-f32');
    await saveLlamaCheckpointCpu(d16to32, cfg, b, 'f32');
    const w = loadLlamaWeightsCpu(d16to32, cfg, { dtype: 'f32' });
    for (const [n, t] of w) expect([...t.data], n).toEqual([...bf16ArrayToF32(b.get(n)!.data)]);
  });

  it('shards past maxShardBytes; loads back the same', async () => {
    const dir = path.join(tmp, 'save-sharded');
    await saveLlamaCheckpointCpu(dir, cfg, fixtureF32, 'f32', { maxShardBytes: 100_000 });
    const files = readdirSync(dir).sort();
    expect(files).toContain(INDEX_FILE);
    expect(files.filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f)).length).toBeGreaterThanOrEqual(3);
    const back = loadLlamaWeightsCpu(dir, cfg, { dtype: 'bf16' });
    for (const [n, t] of fixtureF32) expect([...back.get(n)!.data], n).toEqual([...f32ArrayToBf16(t.data)]);
  });

  it('in an existing directory, replaces only its own files', async () => {
    const dir = path.join(tmp, 'save-existing');
    await saveLlamaCheckpointCpu(dir, cfg, fixtureF32, 'f32', { maxShardBytes: 100_000 });
    writeFileSync(path.join(dir, 'tokenizer.model'), 'keep me');
    await saveLlamaCheckpointCpu(dir, cfg, fixtureF32, 'bf16');
    expect(readdirSync(dir).sort()).toEqual(['config.json', 'model.safetensors', 'tokenizer.model']);
    expect(readFileSync(path.join(dir, 'tokenizer.model'), 'utf8')).toBe('keep me');
    expect(loadLlamaConfig(dir).torch_dtype).toBe('bfloat16');
    expect(readdirSync(tmp).filter((n) => n.includes('.tmp'))).toEqual([]);
  });

  it('refuses an incomplete or wrong-shaped tensor map, writing nothing', async () => {
    const dir = path.join(tmp, 'save-bad');
    const missing = new Map(fixtureF32);
    missing.delete('model.layers.1.mlp.up_proj.weight');
    await expect(saveLlamaCheckpointCpu(dir, cfg, missing, 'f32')).rejects.toThrow(/missing tensor model\.layers\.1\.mlp\.up_proj\.weight/);
    const wrong = new Map(fixtureF32);
    wrong.set('model.norm.weight', { shape: [61], data: new Float32Array(61) });
    await expect(saveLlamaCheckpointCpu(dir, cfg, wrong, 'f32')).rejects.toThrow(/model\.norm\.weight: shape \[61\], config expects \[60\]/);
    expect(existsSync(dir)).toBe(false);
  });
});

describe('checkpoint problems: one UserError naming file and tensor', () => {
  it('missing tensor', async () => {
    const dir = await checkpointWith('missing', (ts) => ts.filter((t) => t.name !== 'model.layers.1.mlp.up_proj.weight'));
    expectUserError(() => loadLlamaWeightsCpu(dir, cfg, { dtype: 'f32' }), path.join(dir, 'model.safetensors'),
      /: missing tensor model\.layers\.1\.mlp\.up_proj\.weight$/);
    const noHead = await checkpointWith('nohead', (ts) => ts.filter((t) => t.name !== 'lm_head.weight'));
    expectUserError(() => loadLlamaWeightsCpu(noHead, cfg, { dtype: 'f32' }), path.join(noHead, 'model.safetensors'),
      /missing tensor lm_head\.weight \(config\.json has tie_word_embeddings false\)/);
  });

  it('wrong shape (transposed)', async () => {
    const dir = await checkpointWith('transposed', (ts) => ts.map((t) => t.name === 'model.layers.0.mlp.up_proj.weight' ? { ...t, shape: [60, 121] } : t));
    expectUserError(() => loadLlamaWeightsCpu(dir, cfg, { dtype: 'bf16' }), path.join(dir, 'model.safetensors'),
      /model\.layers\.0\.mlp\.up_proj\.weight has shape \[60,121\], config\.json expects \[121,60\]/);
  });

  it('config and weights disagree (more layers in the file): config.json and both layer counts named', async () => {
    const extra = await checkpointWith('extra', (ts) => [...ts, { name: 'model.layers.2.input_layernorm.weight', dtype: 'F32', shape: [60], data: new Float32Array(60) }]);
    expectUserError(() => loadLlamaWeightsCpu(extra, cfg, { dtype: 'f32' }), path.join(extra, 'config.json'),
      /num_hidden_layers 2, but .*model\.safetensors has tensors of 3 layers \(model\.layers\.0 to model\.layers\.2\)/);
  });

  it('config.json with far more layers than the checkpoint: one line naming config.json, before anything sized by the config', async () => {
    // The num_hidden_layers 1e9 ran the heap out after 40 s building the tensor list; 2e5
    // layers is small enough for parseLlamaConfig's bound and would still build 1.8M specs first.
    const dir = path.join(tmp, 'many-layers');
    mkdirSync(dir);
    cpSync(path.join(FIXTURE, 'model.safetensors'), path.join(dir, 'model.safetensors'));
    const raw = JSON.parse(readFileSync(path.join(FIXTURE, 'config.json'), 'utf8'));
    writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...raw, num_hidden_layers: 200_000 }));
    const t0 = performance.now();
    expectUserError(() => loadLlamaWeightsCpu(dir, loadLlamaConfig(dir), { dtype: 'f32' }), path.join(dir, 'config.json'),
      /num_hidden_layers 200000, but .*model\.safetensors has tensors of 2 layers \(model\.layers\.0 to model\.layers\.1\)/);
    expect(performance.now() - t0).toBeLessThan(500);
    // And a checkpoint without any layer tensors.
    const none = await checkpointWith('no-layers', (ts) => ts.filter((t) => !t.name.startsWith('model.layers.')));
    expectUserError(() => loadLlamaWeightsCpu(none, cfg, { dtype: 'f32' }), path.join(none, 'config.json'),
      /num_hidden_layers 2, but .*model\.safetensors has no model\.layers\.\* tensors/);
  });

  it('ignores rotary_emb.inv_freq buffers, and lm_head when tied (saying so once: transformers ties it to embed_tokens)', async () => {
    const dir = await checkpointWith('invfreq', (ts) => [...ts,
      { name: 'model.layers.0.self_attn.rotary_emb.inv_freq', dtype: 'F32', shape: [5], data: new Float32Array(5) }]);
    const quiet: string[] = [];
    const w = loadLlamaWeightsCpu(dir, cfg, { dtype: 'f32', onNote: (s) => quiet.push(s) });
    expect(w.size).toBe(fixtureF32.size);
    expect(quiet).toEqual([]);
    const tiedCfg = { ...cfg, tie_word_embeddings: true };
    const notes: string[] = [];
    const tied = loadLlamaWeightsCpu(FIXTURE, tiedCfg, { dtype: 'f32', onNote: (s) => notes.push(s) });
    expect(tied.has('lm_head.weight')).toBe(false);
    expect(tied.size).toBe(fixtureF32.size - 1);
    expect(notes).toHaveLength(1);
    expect(notes[0]).toBe(`${path.join(FIXTURE, 'model.safetensors')}: lm_head.weight is ignored: config.json has tie_word_embeddings true, ` +
      'so the output layer is model.embed_tokens.weight (as in transformers, which ties lm_head to it)');
    expect(notes[0]).not.toContain('\n');
  });

  it('says once that config.json names another architecture, and loads it as a LLaMA (as model_type says)', () => {
    const notes: string[] = [];
    loadLlamaWeightsCpu(FIXTURE, { ...cfg, architectures: ['MistralForCausalLM'] }, { dtype: 'f32', onNote: (s) => notes.push(s) });
    expect(notes).toEqual([`${path.join(FIXTURE, 'config.json')}: architectures ["MistralForCausalLM"] is not LlamaForCausalLM: ` +
      'loading it as a LLaMA, as its model_type "llama" says (transformers\' AutoModelForCausalLM does the same)']);
  });

  it('reads sharded checkpoints written by others (fixture copied into two shards by hand)', async () => {
    const dir = path.join(tmp, 'hand-sharded');
    mkdirSync(dir);
    cpSync(path.join(FIXTURE, 'config.json'), path.join(dir, 'config.json'));
    const all: TensorToWrite[] = [...fixtureF32].map(([n, t]) => ({ name: n, dtype: 'F32', shape: t.shape, data: t.data }));
    const half = Math.ceil(all.length / 2);
    await writeSafetensors(path.join(dir, 'model-00001-of-00002.safetensors'), all.slice(0, half));
    await writeSafetensors(path.join(dir, 'model-00002-of-00002.safetensors'), all.slice(half));
    const weightMap = Object.fromEntries(all.map((t, i) => [t.name, i < half ? 'model-00001-of-00002.safetensors' : 'model-00002-of-00002.safetensors']));
    writeFileSync(path.join(dir, INDEX_FILE), JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }));
    const w = loadLlamaWeightsCpu(dir, cfg, { dtype: 'f32' });
    for (const [n, t] of fixtureF32) expect([...w.get(n)!.data], n).toEqual([...t.data]);
    // A shape error names the shard that holds the tensor.
    const bad = loadLlamaConfig(dir);
    expectUserError(() => loadLlamaWeightsCpu(dir, { ...bad, intermediate_size: 120 }, { dtype: 'f32' }),
      path.join(dir, 'model-00001-of-00002.safetensors'), /model\.layers\.0\.mlp\.gate_proj\.weight has shape \[121,60\], config\.json expects \[120,60\]/);
  });
});
