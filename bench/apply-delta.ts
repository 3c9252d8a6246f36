/**
 * Peak host memory and time of `apply-delta` on a synthetic LLaMA-1B-sized pair (TinyLlama-1.1B's
 * shapes: hidden 2048, intermediate 5632, 22 layers, vocab 32000; 1.1e9 parameters, 2.2 GB per
 * model in F16), to check that streaming keeps the peak near one tensor pair rather than a model.
 *
 *   npx tsx bench/apply-delta.ts [--dir /tmp/wgpu-char-bench-delta] [--layers 22] [--keep]
 *
 * The base and delta are written first (F16 safetensors, 1 GB shards, deterministic pseudo-random
 * values), then apply-delta runs in a child process of its own, so the peak RSS it reports
 * (getrusage's maxrss) is apply-delta's alone, not the generator's. One JSON line: parameters,
 * seconds, peak RSS, the largest tensor's f16 pair, and their ratio.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { llamaWeightSpecs } from '../src/model/weights.ts';
import { parseLlamaConfig } from '../src/model/config.ts';
import { numel, writeSafetensorsSharded } from '../src/formats/safetensors.ts';

const HERE = fileURLToPath(import.meta.url);
const CONFIG = {
  architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 2048, intermediate_size: 5632, num_hidden_layers: 22,
  num_attention_heads: 32, num_key_value_heads: 4, vocab_size: 32000, max_position_embeddings: 2048, rms_norm_eps: 1e-5,
  rope_theta: 10000, tie_word_embeddings: false, torch_dtype: 'float16', bos_token_id: 1, eos_token_id: 2, hidden_act: 'silu',
};

/** f16 bits of small values (|x| < 2^-3 or so): sign, exponent 8..11, random mantissa, from a xorshift. */
function fill(n: number, seed: number): Uint16Array {
  const out = new Uint16Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = (s & 0x8000) | ((8 + ((s >>> 10) & 3)) << 10) | (s & 0x3ff);
  }
  return out;
}

async function writeModel(dir: string, cfg: Record<string, unknown>, seed: number): Promise<void> {
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cfg, null, 2));
  const specs = llamaWeightSpecs(parseLlamaConfig(cfg, path.join(dir, 'config.json')));
  await writeSafetensorsSharded(dir, specs.map((s, i) => ({ name: s.name, dtype: 'F16' as const, shape: s.shape, data: () => fill(numel(s.shape), seed + i) })),
    { maxShardBytes: 1e9 });
}

async function child(base: string, delta: string, out: string): Promise<void> {
  const { applyDelta } = await import('../src/formats/weight-delta.ts');
  const t0 = performance.now();
  const r = await applyDelta({ base, delta, out, onNote: () => {} });
  const seconds = (performance.now() - t0) / 1000;
  console.log(JSON.stringify({ tensors: r.tensors, bytes: r.bytes, seconds, peak_rss_bytes: process.resourceUsage().maxRSS * 1024 }));
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      dir: { type: 'string', default: '/tmp/wgpu-char-bench-delta' },
      layers: { type: 'string', default: '22' },
      keep: { type: 'boolean', default: false },
      child: { type: 'boolean', default: false },
    },
  });
  const dir = values.dir!;
  const base = path.join(dir, 'base');
  const delta = path.join(dir, 'delta');
  const out = path.join(dir, 'out');
  if (values.child) return child(base, delta, out);

  const cfg = { ...CONFIG, num_hidden_layers: Number(values.layers) };
  rmSync(dir, { recursive: true, force: true });
  const g0 = performance.now();
  await writeModel(base, cfg, 1);
  await writeModel(delta, cfg, 1000);
  const genSeconds = (performance.now() - g0) / 1000;
  const specs = llamaWeightSpecs(parseLlamaConfig(cfg, 'bench config'));
  const params = specs.reduce((a, s) => a + numel(s.shape), 0);
  const largest = Math.max(...specs.map((s) => numel(s.shape)));
  const r = spawnSync(process.execPath, ['--import', 'tsx', HERE, '--child', '--dir', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) throw new Error(`apply-delta child failed (status ${r.status}): ${r.stdout}`);
  const m = JSON.parse(r.stdout.trim().split('\n').pop()!) as { seconds: number; peak_rss_bytes: number };
  const pairBytes = largest * 2 * 2;
  console.log(JSON.stringify({
    params, model_bytes_f16: params * 2, generate_seconds: +genSeconds.toFixed(1), apply_seconds: +m.seconds.toFixed(1),
    peak_rss_bytes: m.peak_rss_bytes, largest_tensor_params: largest, largest_pair_bytes_f16: pairBytes,
    peak_over_pair: +(m.peak_rss_bytes / pairBytes).toFixed(2), peak_over_model: +(m.peak_rss_bytes / (params * 2)).toFixed(3),
  }));
  if (!values.keep) rmSync(dir, { recursive: true, force: true });
}

await main();
