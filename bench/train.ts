/**
 * Training throughput and peak GPU memory of a model (default: weights/tiny), ours vs PyTorch in
 * the same run, with and without gradient checkpointing.
 *
 *   npx tsx bench/train.ts [--model weights/tiny | --config FILE] [--dtype bf16|f32] [--batch 8] [--seq 256] [--steps 5] [--lora-rank R]
 *
 * --config: a config.json whose weights are generated on the GPU from a seed (src/model/synthetic.ts),
 * e.g. a 30M LLaMA, without a checkpoint (no PyTorch comparison then). --lora-rank: train a LoRA
 * adapter of that rank on all seven projections (frozen base) instead of every weight.
 *
 * Ours: TrainStep (forward, fused cross-entropy, backward, grad-norm clipping, AdamW; one encoder
 * per step) on a fixed batch of full-length random sequences, median step time over --steps after
 * a warm-up step; peak = bytes of GPU buffers wgpu-char allocated (WebGPU reports no memory use),
 * each configuration measured in its own child process so peaks do not mix.
 * PyTorch: bench/torch_llama.py --train (same LLaMA, f32, autograd, clip_grad_norm_, AdamW) with
 * Debian's /usr/bin/python3 and 2 threads.
 */
import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { debianBlas } from './machine.ts';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'weights/tiny' },
    config: { type: 'string' },
    'lora-rank': { type: 'string' },
    dtype: { type: 'string', default: 'bf16' },
    batch: { type: 'string', default: '8' },
    seq: { type: 'string', default: '256' },
    steps: { type: 'string', default: '5' },
    child: { type: 'string' },
  },
});
const B = Number(values.batch);
const T = Number(values.seq);
const steps = Number(values.steps);

async function child(checkpointing: boolean) {
  const { TrainStep } = await import('../src/train/step.ts');
  const { describeGpu } = await import('../src/gpu/device.ts');
  const { readConfigFile } = await import('../src/formats/hf-config.ts');
  const { DEFAULT_LORA_TARGETS } = await import('../src/model/lora.ts');
  const r = values['lora-rank'] === undefined ? undefined : Number(values['lora-rank']);
  const step = await TrainStep.create({
    ...(values.config ? { modelDir: '', synthetic: { config: readConfigFile(values.config), seed: 7 } } : { modelDir: values.model! }),
    dtype: values.dtype as 'bf16' | 'f32', maxLen: T, maxBatch: B, checkpointing,
    weightDecay: 0.1, maxGradNorm: 1, beta1: 0.9, beta2: 0.999, eps: 1e-8,
    ...(r ? { lora: { config: { r, alpha: 2 * r, dropout: 0.05, targets: DEFAULT_LORA_TARGETS }, seed: 7 } } : {}),
  });
  const V = step.dims.V;
  let x = 12345;
  const rand = () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) % (V - 3)) + 3;
  const samples = Array.from({ length: B }, () => ({ ids: Array.from({ length: T }, rand), targetStart: 1, truncated: false }));
  const times: number[] = [];
  for (let i = 0; i <= steps; i++) {
    const t0 = performance.now();
    await step.trainStep([{ samples }], i + 1, 1e-4);
    if (i > 0) times.push((performance.now() - t0) / 1000);
  }
  times.sort((a, b) => a - b);
  console.log(JSON.stringify({ side: 'wgpu-char', gpu: describeGpu(step.gpu), dtype: values.dtype, lora_rank: r ?? null, checkpointing, batch: B, seq: T, train_tok_s: (B * T) / times[times.length >> 1], peak_gpu_mib: step.peakBytes() / 2 ** 20 }));
  process.exit(0);
}

function main() {
  console.log(`machine: CPU ${cpus()[0]?.model ?? '?'} × ${cpus().length}; model ${values.config ?? values.model}; batch ${B} × seq ${T}${values['lora-rank'] ? `; LoRA rank ${values['lora-rank']}` : ''}`);
  const results: Record<string, { train_tok_s: number; peak_gpu_mib: number }> = {};
  for (const ckpt of [true, false]) {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'bench/train.ts', ...process.argv.slice(2), '--child', String(ckpt)], { encoding: 'utf8' });
    const line = r.stdout.trim().split('\n').pop() ?? '';
    if (r.status !== 0 || !line.startsWith('{')) throw new Error(`child failed: ${r.stderr}`);
    console.log(line);
    results[String(ckpt)] = JSON.parse(line);
  }
  if (values.config || values['lora-rank']) return; // PyTorch's side trains every weight of a checkpoint
  const py = spawnSync('/usr/bin/python3', ['bench/torch_llama.py', values.model!, '--train', '--batch', String(B), '--seq', String(T), '--steps', String(steps), '--threads', '2'], { encoding: 'utf8' });
  if (py.status !== 0) {
    console.log(`pytorch: skipped (${(py.stderr || 'failed').trim().split('\n').pop()})`);
    return;
  }
  const torch = JSON.parse(py.stdout.trim().split('\n').pop()!);
  console.log(JSON.stringify({ side: 'pytorch', ...torch, blas: debianBlas() }));
  console.log(`ratio ours/pytorch (train tokens/s): checkpointing ${(results.true.train_tok_s / torch.train_tok_s).toFixed(2)}, without ${(results.false.train_tok_s / torch.train_tok_s).toFixed(2)}`);
}

if (values.child !== undefined) await child(values.child === 'true');
else main();
