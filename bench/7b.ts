/**
 * LLaMA-7B on this machine's WebGPU device: a full 32-layer model (LLaMA-7B's config,
 * test/fixtures/llama-7b-config.json) with synthetic bf16 weights generated on the GPU from a seed
 * (src/model/synthetic.ts: no 13 GB file, no host copy), then
 *   1. greedy decode: prefill of a short prompt and --decode tokens through the KV cache
 *      (seconds per token);
 *   2. LoRA training: --steps steps of batch 1 × --tokens tokens (rank --rank on all seven
 *      projections, gradient checkpointing, frozen bf16 base), seconds per step;
 * with the tracked GPU bytes (peak), the memory plan's total for the same settings
 * (src/train/plan.ts), and the process's peak RSS (on lavapipe the GPU's memory is the host's).
 * Each part runs in its own child process so peaks do not mix. One JSON line per part.
 *
 *   npx tsx bench/7b.ts [--layers 32] [--rank 16] [--tokens 256] [--steps 1] [--decode 4] [--context 512]
 *
 * On lavapipe (2 cores) this is the proof that a 7B LoRA step fits where bf16 7B weights fit; the
 * times are CPU emulation times (tens of minutes in all), not a speed claim.
 */
import { spawnSync } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    layers: { type: 'string', default: '32' },
    rank: { type: 'string', default: '16' },
    tokens: { type: 'string', default: '256' },
    steps: { type: 'string', default: '1' },
    decode: { type: 'string', default: '4' },
    context: { type: 'string', default: '512' },
    child: { type: 'string' },
  },
});
const layers = Number(values.layers);
const rank = Number(values.rank);
const T = Number(values.tokens);
const steps = Number(values.steps);
const decodeTokens = Number(values.decode);
const context = Number(values.context);
const SEED = 7;

async function config() {
  const { readConfigFile } = await import('../src/formats/hf-config.ts');
  return { ...readConfigFile('test/fixtures/llama-7b-config.json'), num_hidden_layers: layers };
}

const rssGiB = () => process.resourceUsage().maxRSS / 2 ** 20;

async function decode() {
  const { acquireGpu } = await import('../src/node/dawn.ts');
  const { LlamaModel, LlamaForward } = await import('../src/model/llama.ts');
  const { fillSynthetic, syntheticBase } = await import('../src/model/synthetic.ts');
  const { LinearOp } = await import('../src/ops/matmul.ts');
  const { SoftmaxOp } = await import('../src/ops/softmax.ts');
  const { createStorage, StagingReader } = await import('../src/gpu/buffers.ts');
  const { Recorder } = await import('../src/gpu/kernels.ts');
  const { planSampling } = await import('../src/train/plan.ts');
  const gpu = await acquireGpu();
  const cfg = await config();
  const t0 = performance.now();
  const model = LlamaModel.allocate(gpu, cfg, 'bf16');
  await fillSynthetic(gpu, model.weights, syntheticBase(cfg, SEED));
  const loadSeconds = (performance.now() - t0) / 1000;
  const V = model.dims.V;
  const fwd = await LlamaForward.create(model, { maxBatch: 1, maxSeq: context });
  const logits = createStorage(gpu, 'logits', V * 4);
  const probs = createStorage(gpu, 'probs', V * 4);
  const head = await LinearOp.create(gpu, model.lmHead(), fwd.state.xn, logits, false);
  const softmax = await SoftmaxOp.create(gpu, V, logits, probs);
  const reader = new StagingReader(gpu, V * 4, 'probs');
  // Greedy: the host takes the argmax of the probabilities it reads back, as src/gen/generate.ts does.
  const step = async (ids: number[], pos0: number) => {
    gpu.device.queue.writeBuffer(fwd.state.ids.buffer, 0, new Uint32Array(ids));
    const rec = new Recorder(gpu, 'decode');
    const row0 = fwd.record(rec, 1, ids.length, pos0);
    head.record(rec, { rows: 1, inRow: ids.length - 1 - row0 });
    softmax.record(rec, { rows: 1 });
    reader.copyFrom(rec, probs, 0, V * 4);
    rec.submit();
    const p = new Float32Array(await reader.read());
    let best = 0;
    for (let j = 1; j < V; j++) if (p[j] > p[best]) best = j;
    return best;
  };
  const prompt = [1, 4053, 29892, 306, 2, 31999, 17, 450];
  const t1 = performance.now();
  let next = await step(prompt, 0);
  const prefillSeconds = (performance.now() - t1) / 1000;
  const t2 = performance.now();
  for (let i = 0; i < decodeTokens; i++) next = await step([next], prompt.length + i);
  const decodeSeconds = (performance.now() - t2) / 1000;
  const plan = planSampling(cfg, { dtype: 'bf16', context, maxBindingBytes: gpu.maxBindingBytes });
  console.log(JSON.stringify({
    part: 'decode', layers, context, load_s: loadSeconds, prefill_tokens: prompt.length, prefill_s: prefillSeconds,
    decode_tokens: decodeTokens, s_per_token: decodeSeconds / decodeTokens, peak_gpu_bytes: gpu.peakAllocatedBytes, plan_bytes: plan.total, peak_rss_gib: rssGiB(),
  }));
  process.exit(0);
}

async function train() {
  const { TrainStep } = await import('../src/train/step.ts');
  const { DEFAULT_LORA_TARGETS } = await import('../src/model/lora.ts');
  const { planTraining } = await import('../src/train/plan.ts');
  const cfg = await config();
  const lora = { r: rank, alpha: 2 * rank, dropout: 0.05, targets: DEFAULT_LORA_TARGETS };
  const t0 = performance.now();
  const step = await TrainStep.create({
    modelDir: '', synthetic: { config: cfg, seed: SEED }, dtype: 'bf16', maxLen: T, maxBatch: 1, checkpointing: true,
    weightDecay: 0.1, maxGradNorm: 1, beta1: 0.9, beta2: 0.999, eps: 1e-8, lora: { config: lora, seed: SEED },
  });
  const loadSeconds = (performance.now() - t0) / 1000;
  const ids = Array.from({ length: T }, (_, i) => (i * 7919 + 13) % 32000);
  const times: number[] = [];
  const losses: number[] = [];
  for (let s = 1; s <= steps; s++) {
    const t = performance.now();
    const r = await step.trainStep([{ samples: [{ ids, targetStart: 1, truncated: false }] }], s, 1e-4);
    times.push((performance.now() - t) / 1000);
    losses.push(r.loss);
  }
  const plan = planTraining(cfg, { dtype: 'bf16', maxLen: T, batch: 1, checkpointing: true, lora, maxBindingBytes: step.gpu.maxBindingBytes });
  console.log(JSON.stringify({
    part: 'lora_train', layers, rank, tokens: T, load_s: loadSeconds, step_s: times, tokens_per_s: T / Math.min(...times), losses,
    peak_gpu_bytes: step.peakBytes(), plan_bytes: plan.total, peak_rss_gib: rssGiB(),
  }));
  process.exit(0);
}

if (values.child === 'decode') await decode();
else if (values.child === 'train') await train();
else {
  const { acquireGpu } = await import('../src/node/dawn.ts');
  const { describeGpu } = await import('../src/gpu/device.ts');
  const gpu = await acquireGpu();
  console.log(`machine: ${describeGpu(gpu)}; CPU ${cpus()[0]?.model ?? '?'} × ${cpus().length}; host memory ${(totalmem() / 2 ** 30).toFixed(1)} GiB; LLaMA-7B config with ${layers} layers`);
  for (const part of ['decode', 'train']) {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'bench/7b.ts', ...process.argv.slice(2), '--child', part], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    process.stdout.write(r.stdout);
    if (r.status !== 0) {
      console.error(`bench/7b.ts: the ${part} part exited ${r.status}`);
      process.exit(1);
    }
  }
  process.exit(0);
}
