/**
 * `npm run bench`: one benchmark report, ours against PyTorch and llama.cpp, in one sitting.
 *
 *   npm run bench -- [--quick] [--only kernels|e2e] [--reps N] [--machine NAME] [--fma-units N]
 *                    [--gguf-dtype f16|bf16|f32|q8_0] [--device auto|cpu|cuda] [--render FILE.json]
 *
 * Kernels (bench/kernels.ts against bench/torch_kernels.py, a PyTorch worker kept alive over
 * stdin): matmul at the LLaMA shapes of weights/tiny, the 30M model (bench/llama-30m-config.json)
 * and LLaMA-7B at M = 1, 16, 512, bf16 and f32 weights, fwd / bwd_input / bwd_weight; causal
 * attention forward and backward at T = 256 and 1024; RMSNorm, RoPE and SwiGLU forward and
 * backward in GB/s.
 * End to end, weights/tiny and the 30M model (a seeded random checkpoint written once under
 * bench/.cache/): training tokens/s, full and LoRA (bench/train.ts), against PyTorch; greedy
 * prefill and decode tokens/s (bench/decode.ts) against PyTorch and llama.cpp (bench/llamacpp.ts:
 * CPU with 1 thread and every core, Vulkan) on a GGUF of the same weights written by `wgpu-char export`.
 *
 * Interleaved: every benchmark is prepared on every side, then each repetition runs ours, then each
 * peer, so a slow spell of the machine hits all sides alike; tables show medians over --reps.
 * Writes bench/results/<date>-<machine>.json, bench/REPORT.md and its charts bench/charts/*.svg;
 * --quick (a few shapes, 1 repetition, small e2e sizes: checks that everything runs) writes only
 * bench/results/quick/, never the committed report. --render FILE.json rewrites the markdown and
 * charts of an earlier run without measuring anything. Default --reps: 3 (1 with --quick).
 *
 * Duration on the 2-core lavapipe machine: --quick ~1 min (4-5 min while other jobs load the
 * cores); a full run, estimated from --quick's per-benchmark rates, 20-35 min: kernels 6-18 (the
 * 7B shapes at M = 512 and 7B attention at T = 1024 are most of it), decode ~2, training ~12.
 * The progress log (stderr) times every benchmark and side.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, hostname } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { acquireGpu } from '../src/node/dawn.ts';
import { describeGpu, type Gpu } from '../src/gpu/device.ts';
import { readConfigFile } from '../src/formats/hf-checkpoint.ts';
import { headDim, type LlamaConfig } from '../src/model/config.ts';
import type { MatmulDirection } from '../src/ops/matmul.ts';
import { oursDecodeSession, torchDecode, type DecodeRate } from './decode.ts';
import { prepareAttention, prepareLinear, prepareRmsNorm, prepareRope, prepareSwiGlu, type Work } from './kernels.ts';
import type { Prepared } from './gpu-timing.ts';
import { ensurePeers, llamaCppDecode } from './llamacpp.ts';
import { cpuInfo, debianBlas, fmaPeak } from './machine.ts';
import { median } from './stats.ts';
import { modelDirOf } from './synthetic-checkpoint.ts';
import { render, type E2eRow, type KernelResult, type ReportJson } from './report-render.ts';
import { oursTrain, torchTrain, type TrainOptions } from './train.ts';

const ROOT = path.join(import.meta.dirname, '..');
const CACHE = path.join(ROOT, 'bench', '.cache');

const OPTIONS = {
  quick: { type: 'boolean', default: false },
  only: { type: 'string' },
  reps: { type: 'string' },
  machine: { type: 'string' },
  'fma-units': { type: 'string' },
  'gguf-dtype': { type: 'string', default: 'f16' },
  device: { type: 'string', default: 'auto' },
  render: { type: 'string' },
  help: { type: 'boolean', default: false },
} as const;

const USAGE = 'usage: npm run bench -- [--quick] [--only kernels|e2e] [--reps N] [--machine NAME] [--fma-units N] [--gguf-dtype f16|bf16|f32|q8_0] [--device auto|cpu|cuda] [--render FILE.json]';

/** A wrong option is one line and exit 2, never a stack trace. */
function usageError(message: string): never {
  console.error(`bench: ${message}\n${USAGE}`);
  process.exit(2);
}

const { values: flags } = (() => {
  try {
    return parseArgs({ options: OPTIONS });
  } catch (e) {
    return usageError((e as Error).message);
  }
})();
if (flags.help) {
  console.log(USAGE);
  process.exit(0);
}
if (flags.only !== undefined && flags.only !== 'kernels' && flags.only !== 'e2e') usageError(`--only ${flags.only}: kernels or e2e`);
const quick = flags.quick;
const reps = flags.reps !== undefined ? Number(flags.reps) : quick ? 1 : 3;
if (!(Number.isInteger(reps) && reps >= 1)) usageError('--reps must be a positive integer');
/** CPU threads of the peers: every core (2 here); llama.cpp also runs with 1. */
const THREADS = cpus().length;
const log = (s: string) => console.error(`bench: ${s}`);
const t0 = performance.now();
const elapsed = () => `${((performance.now() - t0) / 1000).toFixed(0)} s`;

// ---------------------------------------------------------------- the PyTorch kernel worker

class TorchWorker {
  private readonly proc: ChildProcessWithoutNullStreams;
  private readonly waiting: ((line: string) => void)[] = [];
  private dead: string | null = null;

  constructor(device: string) {
    // PASSIVE: OpenMP's idle threads sleep instead of spinning on the cores lavapipe is using.
    this.proc = spawn('/usr/bin/python3', ['bench/torch_kernels.py', '--threads', String(THREADS), '--device', device], { cwd: ROOT, env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE' } });
    createInterface({ input: this.proc.stdout }).on('line', (line) => this.waiting.shift()?.(line));
    let err = '';
    this.proc.stderr.on('data', (d) => (err += String(d)));
    this.proc.on('exit', (code) => {
      this.dead = `PyTorch worker exited (${code}): ${err.trim().split('\n').pop() ?? ''}`;
      for (const w of this.waiting.splice(0)) w(JSON.stringify({ error: this.dead }));
    });
  }

  async ask(req: object): Promise<Record<string, unknown>> {
    if (this.dead) return { error: this.dead };
    const line = new Promise<string>((resolve) => this.waiting.push(resolve));
    this.proc.stdin.write(JSON.stringify(req) + '\n');
    return JSON.parse(await line);
  }

  close(): void {
    this.proc.stdin.end();
  }
}

// ---------------------------------------------------------------- the benchmarks

interface KernelBench {
  section: KernelResult['section'];
  what: string;
  model: string;
  unit: KernelResult['unit'];
  ours: (gpu: Gpu) => Promise<Prepared & Work>;
  torch: object;
}

interface ModelShape {
  name: string;
  dim: number;
  ffn: number;
  V?: number;
  nH: number;
  nKV: number;
  hd: number;
}

function shapeOf(name: string, cfg: LlamaConfig): ModelShape {
  return { name, dim: cfg.hidden_size, ffn: cfg.intermediate_size, V: cfg.vocab_size, nH: cfg.num_attention_heads, nKV: cfg.num_key_value_heads, hd: headDim(cfg) };
}
const TINY = shapeOf('tiny', readConfigFile(path.join(ROOT, 'weights', 'tiny', 'config.json')));
const M30 = shapeOf('30M', readConfigFile(path.join(ROOT, 'bench', 'llama-30m-config.json')));
const L7B: ModelShape = { name: '7B', dim: 4096, ffn: 11008, nH: 32, nKV: 32, hd: 128 };

function kernelBenches(): KernelBench[] {
  const out: KernelBench[] = [];
  const linear = (m: ModelShape, label: string, N: number, K: number, M: number, dir: MatmulDirection, w: 'bf16' | 'f32') => out.push({
    section: 'matmul', model: m.name, unit: 'GFLOP/s',
    what: `${m.name} ${label} ${K}→${N}, M=${M}, ${dir}, ${dir === 'bwd_weight' ? 'dW f32' : `W ${w}`}`,
    ours: (gpu) => prepareLinear(gpu, dir, { M, N, K }, w),
    torch: { cmd: 'prepare', op: 'matmul', dir, M, N, K },
  });
  const projections = (m: ModelShape) => [
    { label: 'q/o proj', N: m.dim, K: m.dim },
    { label: 'ffn up', N: m.ffn, K: m.dim },
    { label: 'ffn down', N: m.dim, K: m.ffn },
    ...(m.V ? [{ label: 'lm_head', N: m.V, K: m.dim }] : []),
  ];
  if (quick) {
    linear(TINY, 'q/o proj', TINY.dim, TINY.dim, 16, 'fwd', 'f32');
    for (const M of [1, 512]) linear(M30, 'ffn up', M30.ffn, M30.dim, M, 'fwd', 'bf16');
    linear(M30, 'ffn up', M30.ffn, M30.dim, 512, 'bwd_input', 'bf16');
    linear(M30, 'ffn up', M30.ffn, M30.dim, 512, 'bwd_weight', 'f32');
  } else {
    for (const m of [TINY, M30, L7B]) {
      for (const p of projections(m)) {
        for (const M of [1, 16, 512]) {
          for (const w of ['bf16', 'f32'] as const) linear(m, p.label, p.N, p.K, M, 'fwd', w);
          if (M === 1) continue; // a backward has a batch of rows
          for (const w of ['bf16', 'f32'] as const) linear(m, p.label, p.N, p.K, M, 'bwd_input', w);
          linear(m, p.label, p.N, p.K, M, 'bwd_weight', 'f32');
        }
      }
    }
  }
  for (const m of quick ? [M30] : [M30, L7B]) {
    for (const T of quick ? [256] : [256, 1024]) {
      for (const dir of ['fwd', 'bwd'] as const) {
        const s = { B: 1, T, nH: m.nH, nKV: m.nKV, hd: m.hd };
        out.push({
          section: 'attention', model: m.name, unit: 'GFLOP/s', what: `${m.name} attention ${dir}, B=1 T=${T}, ${m.nH}×${m.hd} heads`,
          ours: (gpu) => prepareAttention(gpu, dir, s), torch: { cmd: 'prepare', op: `attention_${dir}`, ...s },
        });
      }
    }
  }
  // Elementwise ops at a training batch: 4×256 rows of the 30M model, 2×256 of 7B.
  for (const [m, B] of quick ? [[M30, 4] as const] : [[M30, 4] as const, [L7B, 2] as const]) {
    const T = 256;
    const rows = B * T;
    for (const dir of ['fwd', 'bwd'] as const) {
      out.push({ section: 'elementwise', model: m.name, unit: 'GB/s', what: `${m.name} RMSNorm ${dir}, ${rows}×${m.dim}`, ours: (gpu) => prepareRmsNorm(gpu, dir, rows, m.dim), torch: { cmd: 'prepare', op: `rmsnorm_${dir}`, rows, cols: m.dim } });
      out.push({ section: 'elementwise', model: m.name, unit: 'GB/s', what: `${m.name} RoPE ${dir} (q), ${rows}×${m.nH}×${m.hd}`, ours: (gpu) => prepareRope(gpu, dir, { B, T, nH: m.nH, hd: m.hd }), torch: { cmd: 'prepare', op: `rope_${dir}`, rows, T, nH: m.nH, hd: m.hd } });
      out.push({ section: 'elementwise', model: m.name, unit: 'GB/s', what: `${m.name} SwiGLU ${dir}, ${rows}×${m.ffn}`, ours: (gpu) => prepareSwiGlu(gpu, dir, rows, m.ffn), torch: { cmd: 'prepare', op: `swiglu_${dir}`, rows, width: m.ffn } });
    }
  }
  return out;
}

async function runKernels(gpu: Gpu, torch: TorchWorker): Promise<KernelResult[]> {
  const benches = kernelBenches();
  const results: KernelResult[] = [];
  for (const [i, b] of benches.entries()) {
    const ours = await b.ours(gpu);
    const prep = await torch.ask(b.torch);
    const torchError = typeof prep.error === 'string' ? prep.error : undefined;
    const oursS: number[] = [];
    const torchS: number[] = [];
    try {
      for (let r = 0; r < reps; r++) {
        oursS.push(await ours.seconds());
        if (!torchError) {
          const t = await torch.ask({ cmd: 'time' });
          if (typeof t.seconds === 'number') torchS.push(t.seconds);
        }
      }
    } finally {
      ours.destroy();
    }
    const work = b.unit === 'GB/s' ? ours.bytes : ours.flops;
    const rate = (s: number) => work / s / 1e9;
    const o = rate(median(oursS));
    const t = torchS.length ? rate(median(torchS)) : null;
    results.push({ section: b.section, what: b.what, model: b.model, unit: b.unit, flops: ours.flops, bytes: ours.bytes, ours_s: oursS, torch_s: torchS, ours: o, torch: t, ratio: t ? o / t : null, ...(torchError ? { torch_error: torchError } : {}) });
    log(`[${i + 1}/${benches.length}] ${b.what}: ours ${o.toFixed(2)} ${b.unit}, PyTorch ${t?.toFixed(2) ?? torchError} (${elapsed()})`);
  }
  return results;
}

// ---------------------------------------------------------------- end to end


/** `wgpu-char export` of a model directory; returns the GGUF path and the command. */
function exportGguf(modelDir: string, name: string, dtype: string): { file: string; command: string } {
  const file = path.join(CACHE, `${name}-${dtype}.gguf`);
  mkdirSync(CACHE, { recursive: true });
  const args = ['bin/wgpu-char.js', 'export', '--model', path.relative(ROOT, modelDir), '--out', path.relative(ROOT, file), '--dtype', dtype];
  const r = spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`wgpu-char export failed: ${r.stderr}`);
  return { file, command: `wgpu-char ${args.slice(1).join(' ')}` };
}

async function runDecode(gpu: Gpu, modelDir: string, name: string, ggufDtype: string, ggufCommands: string[]): Promise<E2eRow[]> {
  const promptTokens = quick ? 16 : 64;
  // weights/tiny decodes a token in a few ms: 128 tokens took 0.1-0.2 s and one stall moved a
  // repetition 3×, so it decodes 384 (64 + 384 fits its 512 positions).
  const newTokens = quick ? 16 : name === 'tiny' ? 384 : 128;
  const gguf = exportGguf(modelDir, name, ggufDtype);
  ggufCommands.push(gguf.command);
  const rel = path.relative(ROOT, modelDir);
  const ts = performance.now();
  const session = await oursDecodeSession(gpu, modelDir, 'bf16', promptTokens, newTokens);
  log(`${name}: our model loaded and warmed up in ${((performance.now() - ts) / 1000).toFixed(1)} s`);
  const software = gpu.report.isSoftware;
  type Side = { name: string; command: string; run: () => DecodeRate | { skipped: string } | Promise<DecodeRate> };
  const llamaSide = (backend: 'cpu' | 'vulkan', threads: number): Side => ({
    name: `llama.cpp ${backend === 'cpu' ? `CPU ${threads} thread${threads > 1 ? 's' : ''}` : 'Vulkan'}`,
    command: `npx tsx bench/llamacpp.ts --gguf ${path.relative(ROOT, gguf.file)} --backend ${backend} --threads ${threads} --prompt-tokens ${promptTokens} --new-tokens ${newTokens}`,
    run: () => llamaCppDecode({ gguf: gguf.file, backend, threads, promptTokens, newTokens, runs: 1, vulkanDevices: software ? '0' : undefined }),
  });
  const sides: Side[] = [
    { name: 'wgpu-char', command: `npx tsx bench/decode.ts --model ${rel} --dtype bf16 --prompt-tokens ${promptTokens} --new-tokens ${newTokens}`, run: () => session.run() },
    { name: 'PyTorch', command: `/usr/bin/python3 bench/torch_llama.py ${rel} --prompt-tokens ${promptTokens} --new-tokens ${newTokens} --threads ${THREADS} --device ${flags.device}`, run: () => torchDecode(modelDir, promptTokens, newTokens, THREADS, flags.device) },
    llamaSide('cpu', 1),
    ...(THREADS > 1 ? [llamaSide('cpu', THREADS)] : []),
    llamaSide('vulkan', 1),
  ];
  const samples = sides.map(() => [] as DecodeRate[]);
  const errors: (string | undefined)[] = sides.map(() => undefined);
  const extras: Record<string, unknown>[] = sides.map(() => ({}));
  for (let r = 0; r < reps; r++) {
    for (const [i, s] of sides.entries()) {
      const ts = performance.now();
      const res = await s.run();
      const took = `${((performance.now() - ts) / 1000).toFixed(1)} s`;
      log(`${name} ${s.name}: ${'skipped' in res ? `skipped (${res.skipped})` : `decode ${res.decode_tok_s.toFixed(1)}, prefill ${res.prefill_tok_s.toFixed(1)} tokens/s`} (${took})`);
      if ('skipped' in res) errors[i] = res.skipped;
      else {
        samples[i].push({ prefill_tok_s: res.prefill_tok_s, decode_tok_s: res.decode_tok_s });
        extras[i] = Object.fromEntries(Object.entries(res).filter(([k]) => !k.endsWith('_tok_s')));
      }
    }
    log(`${name} decode, repetition ${r + 1}/${reps} (${elapsed()})`);
  }
  session.destroy();
  const rows: E2eRow[] = [];
  for (const kind of ['decode', 'prefill'] as const) {
    const key = kind === 'decode' ? 'decode_tok_s' : 'prefill_tok_s';
    const vals = samples.map((xs) => xs.map((x) => x[key]));
    rows.push({
      kind, model: name,
      what: kind === 'decode' ? `${name} greedy decode, ${newTokens} tokens after a ${promptTokens}-token prompt, tokens/s` : `${name} prefill of ${promptTokens} tokens, tokens/s`,
      ours: median(vals[0]), ours_samples: vals[0], ours_command: sides[0].command,
      peers: sides.slice(1).map((s, j) => ({
        name: s.name, value: vals[j + 1].length ? median(vals[j + 1]) : null, samples: vals[j + 1],
        command: s.command,
        ...(errors[j + 1] ? { error: errors[j + 1] } : {}), extra: extras[j + 1] as Record<string, unknown>,
      })),
    });
  }
  return rows;
}

function runTrain(modelDir: string, name: string, opts: { batch: number; seq: number; steps: number }): E2eRow[] {
  const rows: E2eRow[] = [];
  const rel = path.relative(ROOT, modelDir);
  for (const loraRank of [undefined, 8]) {
    const o: TrainOptions = { model: modelDir, dtype: 'bf16', batch: opts.batch, seq: opts.seq, steps: opts.steps, loraRank };
    const oursS: number[] = [];
    const torchS: number[] = [];
    let oursPeak = 0;
    let torchExtra: Record<string, unknown> = {};
    let torchError: string | undefined;
    for (let r = 0; r < reps; r++) {
      const ours = oursTrain(o, false);
      oursS.push(ours.train_tok_s);
      oursPeak = ours.peak_mib;
      const t = torchTrain(o, THREADS, flags.device);
      if ('skipped' in t) torchError = String(t.skipped);
      else {
        torchS.push(t.train_tok_s);
        torchExtra = t;
      }
      log(`${name} training${loraRank ? ` (LoRA r=${loraRank})` : ''}, repetition ${r + 1}/${reps} (${elapsed()})`);
    }
    const common = `--batch ${opts.batch} --seq ${opts.seq} --steps ${opts.steps}${loraRank ? ` --lora-rank ${loraRank}` : ''}`;
    rows.push({
      kind: 'train', model: name,
      what: `${name} training ${loraRank ? `LoRA r=${loraRank} (7 projections)` : 'all weights'}, ${opts.batch}×${opts.seq} tokens/step, tokens/s`,
      ours: median(oursS), ours_samples: oursS, ours_peak_mib: oursPeak,
      ours_command: `npx tsx bench/train.ts --model ${rel} --dtype bf16 ${common}  (the run without checkpointing)`,
      peers: [{
        name: 'PyTorch', value: torchS.length ? median(torchS) : null, samples: torchS, extra: torchExtra,
        command: `/usr/bin/python3 bench/torch_llama.py ${rel} --train ${common} --threads ${THREADS} --device ${flags.device}`,
        ...(torchError ? { error: torchError } : {}),
      }],
    });
  }
  return rows;
}

async function main(): Promise<void> {
  if (flags.render) {
    render(JSON.parse(readFileSync(flags.render, 'utf8')) as ReportJson, log);
    return;
  }
  process.chdir(ROOT); // the scripts it runs name their files from the repository root
  const doKernels = flags.only !== 'e2e';
  const doE2e = flags.only !== 'kernels';
  if (doE2e) {
    try {
      ensurePeers(log);
    } catch (e) {
      log(`llama.cpp: cannot install test/peers (${(e as Error).message.split('\n')[0]}): its columns will say why`);
    }
  }
  const gpu = await acquireGpu();
  const torch = new TorchWorker(flags.device);
  let info = await torch.ask({ cmd: 'info' });
  if (typeof info.error === 'string') {
    log(`PyTorch: ${info.error} (its columns stay empty; Debian: apt-get install python3-torch libopenblas0-pthread)`);
    info = { torch: `not available (${info.error})`, device: 'none' };
  }
  const cpu = cpuInfo();
  const fma = fmaPeak(cpu, flags['fma-units'] ? Number(flags['fma-units']) : undefined);
  const nodePeers = path.join(ROOT, 'test', 'peers', 'node_modules', 'node-llama-cpp', 'package.json');
  const llamaVersion = existsSync(nodePeers) ? `node-llama-cpp ${JSON.parse(readFileSync(nodePeers, 'utf8')).version}` : null;
  log(`${describeGpu(gpu)}; CPU ${cpu.model} × ${cpu.cores}; ${fma.derivation}; PyTorch ${JSON.stringify(info)}`);

  let bandwidth: number | null = null;
  if (doKernels) {
    const bytes = 256 * 2 ** 20;
    if (!(await torch.ask({ cmd: 'prepare', op: 'copy', bytes })).error) {
      const s: number[] = [];
      for (let r = 0; r < Math.max(3, reps); r++) s.push((await torch.ask({ cmd: 'time' })).seconds as number);
      bandwidth = (2 * bytes) / median(s) / 1e9;
    }
  }
  const kernels = doKernels ? await runKernels(gpu, torch) : undefined;
  torch.close();

  let e2e: E2eRow[] | undefined;
  let llamacpp: string | null = llamaVersion;
  let vulkanDevice: string | null = null;
  const ggufCommands: string[] = [];
  if (doE2e) {
    const m30 = (await modelDirOf(path.join(ROOT, 'bench', 'llama-30m-config.json'))).dir;
    const tiny = path.join(ROOT, 'weights', 'tiny');
    e2e = [];
    for (const [dir, name] of [[tiny, 'tiny'], [m30, '30M']] as const) e2e.push(...(await runDecode(gpu, dir, name, flags['gguf-dtype']!, ggufCommands)));
    const trainSize = (name: string) => quick ? { batch: 1, seq: 32, steps: 1 } : name === 'tiny' ? { batch: 8, seq: 256, steps: 3 } : { batch: 4, seq: 256, steps: 3 };
    for (const [dir, name] of [[tiny, 'tiny'], [m30, '30M']] as const) e2e.push(...runTrain(dir, name, trainSize(name)));
    const cppExtra = e2e.flatMap((row) => row.peers).find((p) => p.name === 'llama.cpp Vulkan' && p.extra?.release)?.extra;
    const anyCpp = e2e.flatMap((row) => row.peers).find((p) => p.name.startsWith('llama.cpp') && p.extra?.release)?.extra;
    if (anyCpp) llamacpp = `${llamaVersion}, prebuilt binaries (llama.cpp release tag as node-llama-cpp reports it: ${anyCpp.release}); backends: CPU (1 and ${THREADS} threads) and Vulkan`;
    vulkanDevice = (cppExtra?.gpu_devices as string[] | undefined)?.join(', ') ?? null;
  }

  const date = new Date().toISOString().slice(0, 10);
  const machineName = (flags.machine ?? `${hostname()}-${cpu.cores}c-${gpu.report.description.split(/[\s:]/)[0]}`).toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
  const outDir = path.join(ROOT, 'bench', 'results', ...(quick ? ['quick'] : []));
  mkdirSync(outDir, { recursive: true });
  const jsonFile = path.join(outDir, `${date}-${machineName}.json`);
  const report: ReportJson = {
    date, json: path.relative(ROOT, jsonFile), quick, flags: process.argv.slice(2), reps, duration_s: (performance.now() - t0) / 1000, gguf_dtype: flags['gguf-dtype']!, gguf_commands: ggufCommands,
    machine: {
      cpu: { model: cpu.model, cores: cpu.cores, ghz: cpu.ghz, ghzSource: cpu.ghzSource }, fma, bandwidth_gbs: bandwidth, adapter: describeGpu(gpu), adapter_report: gpu.report, gpu_wait: gpu.waitMode,
      torch: info as Record<string, string | number | null>, blas: debianBlas(), llamacpp, llamacpp_vulkan_device: vulkanDevice, node: process.version,
    },
    kernels, e2e,
  };
  writeFileSync(jsonFile, JSON.stringify(report, null, 1) + '\n');
  render(report, log);
}

await main();
process.exit(0);
