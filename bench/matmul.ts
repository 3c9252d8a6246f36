/**
 * Matmul throughput: GFLOP/s (2·M·N·K per product) of every matmul kernel variant this device
 * runs, per direction, at 1024³ and at LLaMA-ish shapes, with bf16 and f32 weights.
 *
 *   npx tsx bench/matmul.ts [--runs 5] [--quick]
 *
 * Each measurement submits identical dispatches in one encoder (enough for ~0.2 GFLOP, so submit
 * overhead does not dominate small shapes; bench/gpu-timing.ts) and waits with onSubmittedWorkDone;
 * the table shows the median over --runs measurements after one warm-up. bench/report.ts times
 * the same prepareMatmul against PyTorch. `*` marks the variant that matmulKernelFor picks; `-`:
 * the variant does not run that product (matmulKernelFits). Timings on a shared CPU (lavapipe)
 * vary ±15% or more between runs.
 */
import { pathToFileURL } from 'node:url';
import { describeGpu, type Gpu } from '../src/gpu/device.ts';
import { acquireGpu } from '../src/node/dawn.ts';
import { createStorage, createStorageFrom, type GpuBuffer } from '../src/gpu/buffers.ts';
import { Op } from '../src/gpu/kernels.ts';
import { MATMUL_PARAMS, matmulKernelFits, matmulKernelFor, matmulParams, matmulVariants, type MatmulDirection, type MatmulKernel } from '../src/ops/matmul.ts';
import { f32ArrayToBf16 } from '../src/util/bf16.ts';
import { randomNormal } from '../src/util/random.ts';
import { matmulCalls, prepareRecorded, type Prepared } from './gpu-timing.ts';
import { median } from './stats.ts';

export interface Shape {
  label: string;
  M: number;
  N: number;
  K: number;
}

// dim 1024, ffn 2816 (LLaMA's 8/3·dim rounded up to a multiple of 256), 512 rows (batch 2 × 256);
// plus one decode step (M = 1) for the forward.
const SHAPES: Shape[] = [
  { label: 'cube', M: 1024, N: 1024, K: 1024 },
  { label: 'attn proj', M: 512, N: 1024, K: 1024 },
  { label: 'ffn up', M: 512, N: 2816, K: 1024 },
  { label: 'ffn down', M: 512, N: 1024, K: 2816 },
  { label: 'decode', M: 1, N: 1024, K: 1024 },
];
const QUICK_SHAPES = SHAPES.filter((s) => s.label === 'cube' || s.label === 'decode');

function parseArgs(argv: string[]): { runs: number; quick: boolean } {
  let runs = 5;
  let quick = false;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--runs') runs = Number(argv[++i]);
    else if (argv[i] === '--quick') quick = true;
    else throw new Error(`unknown argument ${argv[i]} (usage: npx tsx bench/matmul.ts [--runs N] [--quick])`);
  }
  if (!(runs >= 1)) throw new Error('--runs must be ≥ 1');
  return { runs, quick };
}

function sameKernel(a: MatmulKernel, b: MatmulKernel): boolean {
  return a.kernel === b.kernel && JSON.stringify(a.constants) === JSON.stringify(b.constants);
}

/**
 * One matmul of `mk` at this shape (dir: fwd Y = X·Wᵀ, bwd_input dX = dY·W, bwd_weight dW = dYᵀ·X;
 * W [N, K] in bf16 or f32), ready to time: each measurement runs enough identical dispatches for
 * ~0.2 GFLOP in one submit.
 */
export async function prepareMatmul(gpu: Gpu, dir: MatmulDirection, mk: MatmulKernel, shape: Shape, bf16: boolean): Promise<Prepared> {
  const { M, N, K } = shape;
  const x = randomNormal(M * K, 1);
  const dy = randomNormal(M * N, 2);
  const wf = randomNormal(N * K, 3, 0.05);
  const w = bf16 ? f32ArrayToBf16(wf) : wf;
  const bufs: GpuBuffer[] = [];
  const make = (label: string, data: ArrayBufferView) => {
    const b = createStorageFrom(gpu, label, data);
    bufs.push(b);
    return b;
  };
  const out = (label: string, n: number) => {
    const b = createStorage(gpu, label, n * 4);
    bufs.push(b);
    return b;
  };
  try {
    const bindings =
      dir === 'fwd' ? [make('x', x), make('w', w), out('y', M * N)] :
      dir === 'bwd_input' ? [make('dy', dy), make('w', w), out('dx', M * K)] :
      [make('dy', dy), make('x', x), out('dw', N * K)];
    const constants = { ...mk.constants, ACCUMULATE: false, ...(dir === 'bwd_weight' ? {} : { W_BF16: bf16 }) };
    const op = await Op.create(gpu, { kernel: mk.kernel, constants, bindings, params: MATMUL_PARAMS });
    const params = matmulParams({ M, N, K });
    const [gx, gy] = mk.grid(M, N, K);
    return await prepareRecorded(gpu, (rec) => rec.dispatch(op, params, gx, gy), bufs, { calls: matmulCalls(2 * M * N * K) });
  } catch (e) {
    for (const b of bufs) b.destroy();
    throw e;
  }
}

/** Median seconds per product of `mk` at this shape, over `runs` measurements after a warm-up. */
async function timeKernel(gpu: Gpu, dir: MatmulDirection, mk: MatmulKernel, shape: Shape, bf16: boolean, runs: number): Promise<number> {
  const p = await prepareMatmul(gpu, dir, mk, shape, bf16);
  try {
    const times: number[] = [];
    for (let r = 0; r < runs; r++) times.push(await p.seconds());
    return median(times);
  } finally {
    p.destroy();
  }
}

async function main(): Promise<void> {
  const { runs, quick } = parseArgs(process.argv.slice(2));
  const gpu = await acquireGpu();
  console.log(`machine: ${describeGpu(gpu)}; subgroups: ${gpu.hasSubgroups ? `yes (size ${gpu.report.subgroupSize ?? '?'})` : 'no'}`);
  console.log(`median of ${runs} runs; GFLOP/s = 2·M·N·K / time; * = matmulKernelFor's pick\n`);
  const dirs: MatmulDirection[] = ['fwd', 'bwd_input', 'bwd_weight'];
  const shapes = quick ? QUICK_SHAPES : SHAPES;
  console.log(['direction', 'kernel', 'W', ...shapes.map((s) => `${s.label} ${s.M}x${s.N}x${s.K}`)].join('\t'));
  for (const dir of dirs) {
    for (const bf16 of dir === 'bwd_weight' ? [false] : [true, false]) {
      // Every shape here has K % 8 == 0: the pick for bf16 W is the vec4 forward.
      const picked = matmulKernelFor(gpu, dir, { wBf16: bf16, K: shapes[0].K });
      for (const mk of [...matmulVariants(gpu, dir), picked].filter((v, i, all) => all.findIndex((u) => sameKernel(u, v)) === i)) {
        const mark = sameKernel(mk, picked) ? '*' : ' ';
        const cells: string[] = [];
        for (const shape of shapes) {
          if ((shape.M === 1 && dir !== 'fwd') || !matmulKernelFits(mk, { wBf16: bf16, K: shape.K })) {
            cells.push('-');
            continue;
          }
          // Decode runs the variant matmulKernelFor picks for one row.
          const kernel = shape.M === 1 && mark === '*' ? matmulKernelFor(gpu, dir, { wBf16: bf16, rows: 1, K: shape.K }) : mk;
          const sec = await timeKernel(gpu, dir, kernel, shape, bf16, runs);
          cells.push(((2 * shape.M * shape.N * shape.K) / sec / 1e9).toFixed(2));
        }
        const w = dir === 'bwd_weight' ? 'f32 X' : bf16 ? 'bf16' : 'f32';
        console.log([dir, `${mark}${mk.kernel} ${JSON.stringify(mk.constants)}`, w, ...cells].join('\t'));
      }
    }
  }
  process.exit(0);
}

// Run as a script (the report imports prepareMatmul without running this).
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
