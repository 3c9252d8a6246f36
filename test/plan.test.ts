/**
 * The memory planner (src/train/plan.ts) against what the allocations track (Gpu.allocatedBytes):
 * a training step built for full fine-tuning (bf16 and f32, with and without checkpointing, with
 * split bindings) and for LoRA, and a sampler; and the bound the LoRA issue sets for LLaMA-7B.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadLlamaConfig, loadLlamaModel } from '../src/formats/hf-checkpoint.ts';
import { parseLlamaConfig } from '../src/model/config.ts';
import { DEFAULT_LORA_TARGETS } from '../src/model/lora.ts';
import { Generator } from '../src/gen/generate.ts';
import { Tokenizer } from '../src/data/tokenizer.ts';
import { planServing, planSampling, planTraining, formatBytes } from '../src/train/plan.ts';
import { BatchEngine } from '../src/gen/batch-engine.ts';
import { TrainStep, type TrainStepOptions } from '../src/train/step.ts';
import { gpu } from './util/gpu.ts';

const base = path.join(import.meta.dirname, 'fixtures', 'train-tiny');
const root = path.join(import.meta.dirname, '..');
const GiB = 2 ** 30;

/** LLaMA-7B's config.json (hidden 4096, 32 heads, intermediate 11008, 32 layers, vocab 32000). */
export const LLAMA_7B = parseLlamaConfig(
  { model_type: 'llama', hidden_size: 4096, intermediate_size: 11008, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 32, vocab_size: 32000, max_position_embeddings: 2048, rms_norm_eps: 1e-6, rope_theta: 10000, tie_word_embeddings: false, bos_token_id: 1, eos_token_id: 2, torch_dtype: 'float16' },
  'llama-7b config',
);

describe('memory plan at LLaMA-7B sizes', () => {
  it('LoRA rank 16, batch 1, 2048 tokens, checkpointing, bf16 base: under 20 GiB (128 MiB bindings, as on lavapipe)', () => {
    const lora = { r: 16, alpha: 32, dropout: 0.05, targets: DEFAULT_LORA_TARGETS };
    const plan = planTraining(LLAMA_7B, { dtype: 'bf16', maxLen: 2048, batch: 1, checkpointing: true, lora, maxBindingBytes: 128 * 2 ** 20 });
    console.log(`7B LoRA r16 plan: ${Object.entries(plan).map(([k, v]) => `${k} ${formatBytes(v)}`).join(', ')}`);
    expect(plan.total).toBeLessThan(20 * GiB);
    expect(plan.master_weights).toBe(0);
    // Full fine-tuning of the same model keeps 18 bytes a parameter: far beyond one 80 GB card.
    const full = planTraining(LLAMA_7B, { dtype: 'bf16', maxLen: 2048, batch: 1, checkpointing: true, maxBindingBytes: 128 * 2 ** 20 });
    expect(full.total).toBeGreaterThan(100 * GiB);
  });
});

describe.skipIf(!gpu)('memory plan vs tracked allocations', () => {
  const cfg = loadLlamaConfig(base);
  const opts = (o: Partial<TrainStepOptions>): TrainStepOptions => ({
    modelDir: base, dtype: 'bf16', maxLen: 128, maxBatch: 4, checkpointing: true,
    weightDecay: 0.1, maxGradNorm: 1, beta1: 0.9, beta2: 0.999, eps: 1e-8, ...o,
  });
  const cases: [string, Partial<TrainStepOptions>][] = [
    ['full bf16, checkpointing', {}],
    ['full f32, no checkpointing', { dtype: 'f32', checkpointing: false }],
    ['full f32, 24 KiB bindings (chunked parameters, passes)', { dtype: 'f32', bindingLimit: 24 * 1024 }],
    ['LoRA r 4 on a bf16 base', { lora: { config: { r: 4, alpha: 8, dropout: 0.1, targets: DEFAULT_LORA_TARGETS }, seed: 1 } }],
    ['full bf16 with bf16 Adam moments', { optimDtype: 'bf16' }],
  ];
  for (const [name, o] of cases) {
    it(`training, ${name}: the plan is within 10% of the bytes the step allocates`, async () => {
      const g = gpu!;
      const before = g.allocatedBytes;
      const step = await TrainStep.create(opts(o));
      const measured = g.allocatedBytes - before;
      step.destroy();
      const limit = Math.min(g.maxBindingBytes, o.bindingLimit ?? Infinity);
      const plan = planTraining(cfg, { dtype: o.dtype ?? 'bf16', optimDtype: o.optimDtype, maxLen: 128, batch: 4, checkpointing: o.checkpointing ?? true, lora: o.lora?.config, maxBindingBytes: limit });
      const err = Math.abs(plan.total - measured) / measured;
      console.log(`plan ${name}: planned ${plan.total} B, allocated ${measured} B, error ${(100 * err).toFixed(2)}%`);
      expect(err).toBeLessThan(0.1);
      expect(plan.total).toBe(measured); // exact today: every tracked allocation is in a layout the plan reads
    });
  }

  it('serving: the plan is the bytes a loaded model and its BatchEngine allocate', async () => {
    const g = gpu!;
    const before = g.allocatedBytes;
    const model = await loadLlamaModel(g, path.join(root, 'weights', 'tiny'), 'bf16');
    const settings = { slots: 5, contextLength: 67, prefillChunk: 9 };
    const engine = await BatchEngine.create(model, settings);
    const measured = g.allocatedBytes - before;
    engine.destroy();
    model.destroy();
    const plan = planServing(model.cfg, { dtype: 'bf16', context: settings.contextLength, maxBindingBytes: g.maxBindingBytes, slots: settings.slots, prefillChunk: settings.prefillChunk });
    console.log(`plan serving: planned ${plan.total} B, allocated ${measured} B`);
    expect(plan.total).toBe(measured);
  });

  it('sampling: the plan is within 10% of the bytes a loaded model and its generator allocate', async () => {
    const g = gpu!;
    const before = g.allocatedBytes;
    const model = await loadLlamaModel(g, path.join(root, 'weights', 'tiny'), 'bf16');
    const tok = await Tokenizer.load(path.join(root, 'weights', 'tiny', 'tokenizer.model'));
    const gen = await Generator.create(model, tok);
    const measured = g.allocatedBytes - before;
    gen.destroy();
    model.destroy();
    tok.dispose();
    const plan = planSampling(model.cfg, { dtype: 'bf16', context: model.maxPositions, maxBindingBytes: g.maxBindingBytes });
    const err = Math.abs(plan.total - measured) / measured;
    console.log(`plan sampling: planned ${plan.total} B, allocated ${measured} B, error ${(100 * err).toFixed(2)}%`);
    expect(err).toBeLessThan(0.1);
  });
});

describe('wgpu-char plan', () => {
  const cli = (args: string[]) => spawnSync(process.execPath, ['bin/wgpu-char.js', 'plan', ...args], { cwd: root, encoding: 'utf8', timeout: 60_000 });

  it('--json on a bare config.json: one line with train and sample totals and roles, without touching a GPU (--binding-limit given)', () => {
    const r = cli(['--config', 'test/fixtures/llama-7b-config.json', '--lora-rank', '16', '--batch-size', '1', '--max-len', '2048', '--binding-limit', '128MiB', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout.trim());
    expect(j.train.total_bytes).toBeLessThan(20 * GiB);
    expect(j.train.total_bytes).toBe(Object.entries(j.train).filter(([k]) => k !== 'total_bytes').reduce((a, [, v]) => a + (v as number), 0));
    expect(j.sample.kv_cache_bytes).toBe(32 * 2 * 2048 * 4096 * 4);
  });

  it('a plan over --gpu-memory, a bad size and a missing input are one line each, exit 1', () => {
    const over = cli(['--config', 'test/fixtures/llama-7b-config.json', '--batch-size', '1', '--binding-limit', '128MiB', '--gpu-memory', '80GB']);
    expect(over.status).toBe(1);
    expect(over.stderr.trim().split('\n').pop()).toMatch(/^wgpu-char: plan: training needs 115 GiB, more than --gpu-memory 74\.5 GiB: use --lora-rank/);
    const bad = cli(['--config', 'test/fixtures/llama-7b-config.json', '--gpu-memory', 'lots']);
    expect(bad.status).toBe(1);
    expect(bad.stderr.trim()).toBe('wgpu-char: --gpu-memory: must be a size such as 24GB, 24GiB, 512MiB or a number of bytes (got "lots")');
    const none = cli(['--batch-size', '1']);
    expect(none.status).toBe(1);
    expect(none.stderr.trim()).toBe('wgpu-char: plan: give one of --model DIR or --config FILE');
  });
});

describe.skipIf(!gpu)('train prints its plan and refuses a run over --gpu-memory before allocating', () => {
  it('one line naming the need and the budget, exit 1, nothing left in --out', () => {
    const tmp = mkdtempSync(path.join(tmpdir(), 'plan-train-'));
    const out = path.join(tmp, 'run');
    const r = spawnSync(process.execPath, ['bin/wgpu-char.js', 'train', '--data', 'examples/prompted_Beethoven.jsonl', '--out', out, '--max-steps', '1', '--eval-ratio', '0', '--max-len', '256', '--gpu-memory', '10MB'], { cwd: root, encoding: 'utf8', timeout: 120_000 });
    expect(r.status).toBe(1);
    const lines = r.stderr.trim().split('\n').filter((l) => l.startsWith('wgpu-char: '));
    expect(lines.some((l) => /^wgpu-char: plan: [0-9.]+ MiB of GPU memory \(weights /.test(l))).toBe(true);
    expect(lines.pop()).toMatch(/^wgpu-char: training needs [0-9.]+ MiB of GPU memory, more than --gpu-memory 9\.5 MiB: use --lora-rank, a smaller --batch-size or --max-len$/);
    expect(existsSync(out)).toBe(false);
  });
});
