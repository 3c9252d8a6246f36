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
 * Debian's /usr/bin/python3 and 2 threads (with --lora-rank, the same adapter trained in PyTorch).
 * bench/report.ts runs the same two functions, oursTrain and torchTrain, interleaved.
 */
import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { debianBlas } from './machine.ts';

export interface TrainOptions {
  /** A model directory, or a config.json whose weights are synthetic (ours only). */
  model?: string;
  config?: string;
  dtype: 'bf16' | 'f32';
  batch: number;
  seq: number;
  steps: number;
  loraRank?: number;
}

export interface TrainRate {
  train_tok_s: number;
  /** Ours: bytes of GPU buffers we allocated; PyTorch: peak RSS (CPU) or max_memory_allocated (CUDA). */
  peak_mib: number;
}

const trainArgs = (o: TrainOptions) => [
  ...(o.config ? ['--config', o.config] : ['--model', o.model ?? 'weights/tiny']),
  '--dtype', o.dtype, '--batch', String(o.batch), '--seq', String(o.seq), '--steps', String(o.steps),
  ...(o.loraRank ? ['--lora-rank', String(o.loraRank)] : []),
];

/** Our training steps in a child process of their own (so its peak memory is this configuration's alone). */
export function oursTrain(o: TrainOptions, checkpointing: boolean): TrainRate & Record<string, unknown> {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'bench/train.ts', ...trainArgs(o), '--child', String(checkpointing)], { encoding: 'utf8' });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  if (r.status !== 0 || !line.startsWith('{')) throw new Error(`bench/train.ts child failed: ${r.stderr}`);
  const j = JSON.parse(line);
  return { ...j, peak_mib: j.peak_gpu_mib };
}

/** PyTorch's training steps on the same model directory (bench/torch_llama.py --train), or why they could not run. */
export function torchTrain(o: TrainOptions, threads: number, device = 'auto'): (TrainRate & Record<string, unknown>) | { skipped: string } {
  if (!o.model) return { skipped: 'PyTorch needs a model directory (synthetic --config weights are ours only)' };
  const py = spawnSync('/usr/bin/python3', ['bench/torch_llama.py', o.model, '--train', '--batch', String(o.batch), '--seq', String(o.seq), '--steps', String(o.steps),
    '--threads', String(threads), '--device', device, ...(o.loraRank ? ['--lora-rank', String(o.loraRank)] : [])], { encoding: 'utf8', env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE' } });
  if (py.status !== 0) return { skipped: (py.stderr || py.error?.message || 'failed').trim().split('\n').pop()! };
  return JSON.parse(py.stdout.trim().split('\n').pop()!);
}

const isScript = import.meta.url === pathToFileURL(process.argv[1] ?? '').href;
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
  // Imported by bench/report.ts: its flags are not ours.
  args: isScript ? process.argv.slice(2) : [],
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
  const opts: TrainOptions = {
    ...(values.config ? { config: values.config } : { model: values.model }),
    dtype: values.dtype as 'bf16' | 'f32', batch: B, seq: T, steps, loraRank: values['lora-rank'] ? Number(values['lora-rank']) : undefined,
  };
  const results: Record<string, TrainRate> = {};
  for (const ckpt of [true, false]) {
    results[String(ckpt)] = oursTrain(opts, ckpt);
    console.log(JSON.stringify(results[String(ckpt)]));
  }
  const torch = torchTrain(opts, 2);
  if ('skipped' in torch) {
    console.log(`pytorch: skipped (${torch.skipped})`);
    return;
  }
  console.log(JSON.stringify({ side: 'pytorch', ...torch, blas: debianBlas() }));
  console.log(`ratio ours/pytorch (train tokens/s): checkpointing ${(results.true.train_tok_s / torch.train_tok_s).toFixed(2)}, without ${(results.false.train_tok_s / torch.train_tok_s).toFixed(2)}`);
}

if (isScript) {
  if (values.child !== undefined) await child(values.child === 'true');
  else main();
}
