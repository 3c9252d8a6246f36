/**
 * bench/report.ts's output: the JSON a run writes (ReportJson), and REPORT.md with its SVG charts
 * rendered from it, so a report can be rewritten from its JSON (`npm run bench -- --render FILE`).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Gpu } from '../src/gpu/device.ts';
import type { cpuInfo, fmaPeak } from './machine.ts';
import { ratioBars, roofline, type Bar, type RooflinePoint } from './svg.ts';

const ROOT = path.join(import.meta.dirname, '..');

/** One kernel benchmark: rates in `unit` from the medians of the per-repetition seconds per call. */
export interface KernelResult {
  section: 'matmul' | 'attention' | 'elementwise';
  what: string;
  model: string;
  unit: 'GFLOP/s' | 'GB/s';
  /** Nominal work of one call (bench/kernels.ts), the same for both sides. */
  flops: number;
  bytes: number;
  /** Seconds per call, one entry per repetition. */
  ours_s: number[];
  torch_s: number[];
  ours: number;
  torch: number | null;
  /** ours / torch. */
  ratio: number | null;
  torch_error?: string;
}

/** One end-to-end measurement (tokens/s, medians over repetitions) of ours and each peer. */
export interface E2eRow {
  kind: 'decode' | 'prefill' | 'train';
  model: string;
  what: string;
  ours: number;
  ours_samples: number[];
  ours_command: string;
  peers: { name: string; value: number | null; samples: number[]; command: string; error?: string; extra?: Record<string, unknown> }[];
  ours_peak_mib?: number;
}

const f = (x: number | null | undefined, d = 2) => (x === null || x === undefined || !Number.isFinite(x) ? '—' : x >= 1000 ? x.toFixed(0) : x >= 100 ? x.toFixed(1) : x.toFixed(d));

function markdown(r: ReportJson, charts: { kernels?: string; e2e?: string; roofline?: string }): string {
  const m = r.machine;
  const peer = `PyTorch ${m.torch.torch} f32 on ${m.torch.device}${m.torch.device_name ? ` (${m.torch.device_name})` : ''}`;
  const lines: string[] = [
    '# wgpu-char benchmark report',
    '',
    `Written by \`npm run bench${r.flags.length ? ` -- ${r.flags.join(' ')}` : ''}\` on ${r.date} in ${(r.duration_s / 60).toFixed(1)} min; raw numbers in \`${r.json}\`.`,
    `Medians of ${r.reps} interleaved repetitions (each repetition runs ours, then every peer, benchmark by benchmark). Ratio = ours / peer: above 1 we are faster.`,
    '',
    '## Machine',
    '',
    `| | |`,
    `|---|---|`,
    `| CPU | ${m.cpu.model}, ${m.cpu.cores} cores, ${m.cpu.ghz.toFixed(2)} GHz |`,
    `| FMA peak (f32) | ${m.fma.derivation} |`,
    `| memory bandwidth | ${m.bandwidth_gbs ? `${f(m.bandwidth_gbs)} GB/s (PyTorch copy of 256 MiB: read + write bytes / time)` : 'not measured'} |`,
    `| WebGPU adapter (ours) | ${m.adapter} |`,
    ...(m.gpu_wait ? [`| How ours waits for the GPU | ${m.gpu_wait === 'sleep' ? 'sleep: the main thread sleeps in slices through waits whose predecessor took 10 ms or more and polls shorter ones (software adapter; WGPU_CHAR_GPU_WAIT)' : m.gpu_wait} |`] : []),
    `| PyTorch | ${m.torch.torch}, device ${m.torch.device}${m.torch.device_name ? ` (${m.torch.device_name}, CUDA ${m.torch.cuda})` : `, ${m.torch.threads} threads, BLAS: ${m.blas} (torch's BLAS_INFO: ${m.torch.blas_info})`} |`,
    `| llama.cpp | ${m.llamacpp ?? 'not run'} |`,
    `| Node.js | ${m.node} |`,
    '',
  ];
  if (r.kernels) {
    const k = r.kernels;
    const table = (section: KernelResult['section'], unit: string) => {
      const rows = k.filter((x) => x.section === section);
      if (!rows.length) return;
      const flop = unit === 'GFLOP/s';
      lines.push(`| what | ours ${unit} |${flop ? ' % of FMA peak |' : ''} PyTorch ${unit} | ratio |`, `|---|---:|${flop ? '---:|' : ''}---:|---:|`);
      for (const x of rows) lines.push(`| ${x.what} | ${f(x.ours)} |${flop ? ` ${f((100 * x.ours) / m.fma.gflops, 1)} |` : ''} ${x.torch_error ? `error: ${x.torch_error}` : f(x.torch)} | ${f(x.ratio)} |`);
      lines.push('');
    };
    lines.push('## Kernels', '',
      'Ours: the op the model records (src/ops: the kernel `matmulKernelFor` picks, weights in row chunks, this adapter\'s attention tiles), timed by `bench/kernels.ts` (many calls in one submit, seconds per call); ',
      `peer: ${peer}, the same shapes in \`bench/torch_kernels.py\` (x @ w.T, dy @ w, dy.T @ x; attention as matmul + masked softmax, its backward by autograd; the model's RMSNorm/RoPE/SwiGLU expressions). `,
      'Nominal work, the same for both sides: matmul 2·M·N·K flops; causal attention forward 2·B·nH·T²·hd, backward 2.5× that; GB/s = the bytes a fused kernel must read and write once (bench/kernels.ts lists them; PyTorch\'s unfused expressions move more). ',
      'Matmul shapes are K→N (in → out features) with M rows; our W is bf16 or f32, PyTorch\'s always f32.', '');
    const cmd = (ours: string, torchOp: string) => `Command: \`npm run bench -- --only kernels\` (ours: \`${ours}\` in bench/kernels.ts; PyTorch: \`${torchOp}\` requests to bench/torch_kernels.py).`;
    lines.push('### Matmul', '', cmd('prepareLinear', '{"op": "matmul"}'), '');
    table('matmul', 'GFLOP/s');
    lines.push('### Attention', '', cmd('prepareAttention', '{"op": "attention_fwd|attention_bwd"}'), '');
    table('attention', 'GFLOP/s');
    lines.push('### RMSNorm, RoPE, SwiGLU', '', cmd('prepareRmsNorm / prepareRope / prepareSwiGlu', '{"op": "rmsnorm_fwd", ...}'), '');
    table('elementwise', 'GB/s');
    if (charts.kernels) lines.push(`![kernel ratios](${charts.kernels})`, '');
    if (charts.roofline) lines.push(`![roofline](${charts.roofline})`, '');
  }
  if (r.e2e) {
    lines.push('## End to end', '',
      `Ours: bf16 weights on the WebGPU adapter. PyTorch: f32, ${m.torch.device}. llama.cpp: node-llama-cpp's prebuilt binaries on a ${r.gguf_dtype} GGUF of the same checkpoint written by \`wgpu-char export\`; its Vulkan backend on ${m.llamacpp_vulkan_device ?? 'its first Vulkan device'}. `,
      'Decode tokens/s counts forward passes after the prompt (n new tokens = n − 1 decode forwards, on every side). Training: ours without activation checkpointing (PyTorch keeps its activations too), AdamW, grad-norm clipping; LoRA at rank 8, alpha 16, dropout 0.05 on all seven projections, base frozen. ',
      'Peak memory: ours = bytes of the GPU buffers we allocated; PyTorch = peak RSS of its process (Python and torch included) on the CPU, `max_memory_allocated` on CUDA.', '',
      '| what | side | command | tokens/s | ratio ours / side |', '|---|---|---|---:|---:|');
    for (const row of r.e2e) {
      lines.push(`| ${row.what} | **wgpu-char** | \`${row.ours_command}\` | **${f(row.ours, 1)}** | |`);
      for (const p of row.peers) lines.push(`| | ${p.name} | \`${p.command}\` | ${p.error ? `error: ${p.error}` : f(p.value, 1)} | ${p.value ? f(row.ours / p.value) : '—'} |`);
    }
    if (r.gguf_commands.length) lines.push('', `The GGUF files: ${r.gguf_commands.map((c) => `\`${c}\``).join(', ')}.`);
    const trains = r.e2e.filter((x) => x.kind === 'train');
    if (trains.length) {
      lines.push('', '| training | ours peak MiB (GPU buffers) | PyTorch peak MiB |', '|---|---:|---:|');
      for (const t of trains) lines.push(`| ${t.what} | ${f(t.ours_peak_mib, 1)} | ${f(t.peers[0]?.extra?.peak_mib as number | undefined, 1)} |`);
    }
    lines.push('');
    if (charts.e2e) lines.push(`![end-to-end ratios](${charts.e2e})`, '');
  }
  lines.push('## Caveats', '',
    '- One machine, one sitting: the ratios are the point; absolute numbers move with the load on the host (lavapipe runs on the same cores as the peers).',
    '- The FMA peak is an upper bound from the formula above (the AVX-512 clock is often below the nominal one); the unit count per core is assumed, not measured.',
    '- PyTorch is f32 with f32 weights; ours reads bf16 or f32 weights as the row says and accumulates in f32; llama.cpp reads the GGUF type above.',
    '- The 30M model has random weights (bench/.cache/llama-30m): decode speed does not depend on the values, and every side decodes the same prompt ids for the same number of tokens.',
    '');
  return lines.join('\n');
}

export interface ReportJson {
  date: string;
  /** The JSON file, relative to the repository (in markdown(): relative to REPORT.md). */
  json: string;
  quick: boolean;
  flags: string[];
  reps: number;
  duration_s: number;
  gguf_dtype: string;
  gguf_commands: string[];
  machine: {
    cpu: Omit<ReturnType<typeof cpuInfo>, 'flags'>;
    fma: ReturnType<typeof fmaPeak>;
    bandwidth_gbs: number | null;
    adapter: string;
    adapter_report: Gpu['report'];
    /** How our process waited for the GPU (src/node/dawn.ts chooseWait); absent in reports before it existed. */
    gpu_wait?: string;
    torch: Record<string, string | number | null>;
    blas: string;
    llamacpp: string | null;
    llamacpp_vulkan_device: string | null;
    node: string;
  };
  kernels?: KernelResult[];
  e2e?: E2eRow[];
}

/**
 * REPORT.md and its charts from a report's JSON: bench/REPORT.md + bench/charts/*.svg, or for a
 * --quick run bench/results/quick/ (never the committed report).
 */
export function render(report: ReportJson, log: (s: string) => void): void {
  const outDir = report.quick ? path.join(ROOT, 'bench', 'results', 'quick') : path.join(ROOT, 'bench');
  const chartDir = report.quick ? outDir : path.join(ROOT, 'bench', 'charts');
  mkdirSync(chartDir, { recursive: true });
  const charts: { kernels?: string; e2e?: string; roofline?: string } = {};
  const write = (name: string, svg: string) => {
    writeFileSync(path.join(chartDir, name), svg);
    return path.relative(outDir, path.join(chartDir, name));
  };
  const { kernels, e2e, machine } = report;
  const torchName = `PyTorch f32 (${machine.torch.device ?? 'cpu'})`;
  if (kernels) {
    charts.kernels = write('kernel-ratios.svg', ratioBars(`Kernels: wgpu-char / ${torchName}, same shapes`, kernels.map((k): Bar => ({ label: k.what, ratio: k.ratio ?? NaN }))));
    const pts: RooflinePoint[] = kernels.filter((k) => k.unit === 'GFLOP/s').flatMap((k) => [
      { label: k.what, intensity: k.flops / k.bytes, gflops: k.ours, series: 'ours' as const },
      ...(k.torch ? [{ label: k.what, intensity: k.flops / k.bytes, gflops: k.torch, series: 'peer' as const }] : []),
    ]);
    charts.roofline = write('roofline.svg', roofline(`Matmul and attention against the machine's ceilings (${machine.cpu.model})`, pts, machine.fma.gflops, machine.bandwidth_gbs, torchName));
  }
  if (e2e) {
    const bars: Bar[] = e2e.flatMap((row) => row.peers.map((p) => ({ label: `${row.model} ${row.kind}${row.what.includes('LoRA') ? ' LoRA' : ''} vs ${p.name}`, ratio: p.value ? row.ours / p.value : NaN })));
    charts.e2e = write('e2e-ratios.svg', ratioBars('End to end: wgpu-char / peer (tokens/s)', bars));
  }
  const mdFile = path.join(outDir, 'REPORT.md');
  writeFileSync(mdFile, markdown({ ...report, json: path.relative(outDir, path.join(ROOT, report.json)) }, charts));
  log(`wrote ${report.json}, ${path.relative(ROOT, mdFile)} and charts in ${path.relative(ROOT, chartDir)}/`);
}
