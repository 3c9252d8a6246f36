/**
 * Our side of the report's kernel benchmarks, each through the op the model itself records
 * (src/ops/*.ts: the kernel matmulKernelFor picks, row-chunked weights, the attention tiles of this
 * device), on seeded random inputs, ready to time with bench/gpu-timing.ts. Each benchmark says its
 * nominal work, the same number for PyTorch's side (bench/torch_kernels.py):
 *   matmul  flops 2·M·N·K; bytes X + W (2 or 4 bytes a weight) + Y, each once
 *   attention (causal, B·nH heads of T queries)  forward flops 2·B·nH·T²·hd (QKᵀ and PV, half of
 *     each under the mask), backward 2.5× that (FlashAttention's count: five products, one is the
 *     recomputed QKᵀ); bytes q, k, v, o (and dO, dq, dk, dv) once
 *   RMSNorm / RoPE / SwiGLU, forward and backward: bytes read + written once (GB/s is what they
 *     are judged by; their functions say which)
 */
import { createStorage, createStorageFrom, type GpuBuffer } from '../src/gpu/buffers.ts';
import type { Gpu } from '../src/gpu/device.ts';
import { AttentionBackwardOp, AttentionOp } from '../src/ops/attention.ts';
import { LinearGradInputOp, LinearGradWeightOp, LinearOp, type MatmulDirection } from '../src/ops/matmul.ts';
import { RmsNormBackwardOp, RmsNormOp } from '../src/ops/rmsnorm.ts';
import { RopeOp } from '../src/ops/rope.ts';
import { SwiGluBackwardOp, SwiGluOp } from '../src/ops/swiglu.ts';
import { ParamBuffers } from '../src/model/param-buffers.ts';
import { ParamTable } from '../src/model/param-table.ts';
import { ropeTable } from '../src/model/rope-table.ts';
import { f32ArrayToBf16 } from '../src/util/bf16.ts';
import { randomNormal } from '../src/util/random.ts';
import { matmulCalls, prepareRecorded, type Prepared } from './gpu-timing.ts';

export interface Work {
  flops: number;
  bytes: number;
}

export interface AttentionShape {
  B: number;
  T: number;
  nH: number;
  nKV: number;
  hd: number;
}

/** Buffers one benchmark allocates, destroyed together. */
class Pool {
  readonly all: GpuBuffer[] = [];
  constructor(private readonly gpu: Gpu) {}
  random(label: string, n: number, seed: number, scale = 1): GpuBuffer {
    const b = createStorageFrom(this.gpu, label, randomNormal(n, seed, scale));
    this.all.push(b);
    return b;
  }
  from(label: string, data: Float32Array): GpuBuffer {
    const b = createStorageFrom(this.gpu, label, data);
    this.all.push(b);
    return b;
  }
  zeros(label: string, n: number): GpuBuffer {
    const b = createStorage(this.gpu, label, n * 4);
    this.all.push(b);
    return b;
  }
}

/** One weight [N, K] (or norm [K]) in the model's parameter layout: row chunks within the binding limit. */
function weight(gpu: Gpu, shape: number[], elem: 'f32' | 'bf16', seed: number, fill: 'random' | 'ones' | 'none') {
  const table = new ParamTable([{ name: 'w', shape, decay: false }], gpu.maxBindingBytes);
  const buffers = new ParamBuffers(gpu, table, elem, `bench:${elem}`);
  const entry = table.get('w');
  if (fill !== 'none') {
    const n = shape.reduce((a, b) => a * b, 1);
    const f = fill === 'ones' ? new Float32Array(n).fill(1) : randomNormal(n, seed, 0.05);
    buffers.uploadTensor(entry, elem === 'bf16' ? f32ArrayToBf16(f) : f);
  }
  return { ref: { entry, buffers }, destroy: () => buffers.destroy() };
}

/** Y = X·Wᵀ (fwd), dX = dY·W (bwd_input) or dW += dYᵀ·X (bwd_weight; dW f32), W [N, K] with `wElem` weights. */
export async function prepareLinear(gpu: Gpu, dir: MatmulDirection, s: { M: number; N: number; K: number }, wElem: 'f32' | 'bf16'): Promise<Prepared & Work> {
  const { M, N, K } = s;
  const pool = new Pool(gpu);
  const w = weight(gpu, [N, K], dir === 'bwd_weight' ? 'f32' : wElem, 3, dir === 'bwd_weight' ? 'none' : 'random');
  try {
    const op =
      dir === 'fwd' ? await LinearOp.create(gpu, w.ref, pool.random('x', M * K, 1), pool.zeros('y', M * N), false) :
      dir === 'bwd_input' ? await LinearGradInputOp.create(gpu, w.ref, pool.random('dy', M * N, 2), pool.zeros('dx', M * K), false) :
      await LinearGradWeightOp.create(gpu, w.ref, pool.random('dy', M * N, 2), pool.random('x', M * K, 1));
    const wBytes = dir === 'bwd_weight' ? 8 : wElem === 'bf16' ? 2 : 4; // dW is read and written
    const p = await prepareRecorded(gpu, (rec) => op.record(rec, { rows: M }), pool.all, { calls: matmulCalls(2 * M * N * K) });
    return { seconds: p.seconds, destroy: () => (p.destroy(), w.destroy()), flops: 2 * M * N * K, bytes: 4 * (M * K + M * N) + wBytes * N * K };
  } catch (e) {
    for (const b of pool.all) b.destroy();
    w.destroy();
    throw e;
  }
}

/** Causal attention forward, or its backward alone (prep, dQ, dK/dV), over B sequences of T tokens. */
export async function prepareAttention(gpu: Gpu, dir: 'fwd' | 'bwd', s: AttentionShape): Promise<Prepared & Work> {
  const { B, T, nH, nKV, hd } = s;
  const pool = new Pool(gpu);
  const q = pool.random('q', B * T * nH * hd, 1);
  const k = pool.random('k', B * T * nKV * hd, 2);
  const v = pool.random('v', B * T * nKV * hd, 3);
  const o = pool.zeros('o', B * T * nH * hd);
  const lse = pool.zeros('lse', B * T * nH);
  const call = { rows: B * T, B, T };
  const fwd = await AttentionOp.create(gpu, { nH, nKV, hd }, q, k, v, o, lse);
  const fwdFlops = 2 * B * nH * T * T * hd;
  const qBytes = 4 * B * T * nH * hd;
  const kvBytes = 4 * B * T * nKV * hd;
  if (dir === 'fwd') {
    const p = await prepareRecorded(gpu, (rec) => fwd.record(rec, call), pool.all);
    return { ...p, flops: fwdFlops, bytes: 2 * qBytes + 2 * kvBytes };
  }
  // The forward once, for o and lse; then only the backward is timed.
  const once = await prepareRecorded(gpu, (rec) => fwd.record(rec, call), [], { calls: 1 });
  once.destroy();
  const bwd = await AttentionBackwardOp.create(gpu, { nH, nKV, hd }, {
    q, k, v, o, lse, dout: pool.random('dout', B * T * nH * hd, 4), dsum: pool.zeros('dsum', B * T * nH),
    dq: pool.zeros('dq', B * T * nH * hd), dk: pool.zeros('dk', B * T * nKV * hd), dv: pool.zeros('dv', B * T * nKV * hd),
  });
  const p = await prepareRecorded(gpu, (rec) => bwd.record(rec, call), pool.all);
  return { ...p, flops: 2.5 * fwdFlops, bytes: 4 * qBytes + 4 * kvBytes };
}

/**
 * RMSNorm over rows × cols (f32 weight): fwd y = rmsnorm(x)·w; bwd dx and dw (+=) from dy, x, rstd
 * (the two passes the model records). Bytes: fwd x, y, w, rstd; bwd dy, x, dx (dx pass) + dy, x
 * (dw pass), w, dw, rstd twice.
 */
export async function prepareRmsNorm(gpu: Gpu, dir: 'fwd' | 'bwd', rows: number, cols: number): Promise<Prepared & Work> {
  const pool = new Pool(gpu);
  const w = weight(gpu, [cols], 'f32', 0, 'ones');
  const gw = weight(gpu, [cols], 'f32', 0, 'none');
  const x = pool.random('x', rows * cols, 1);
  const rstd = pool.from('rstd', new Float32Array(rows).fill(1));
  const op = dir === 'fwd'
    ? await RmsNormOp.create(gpu, w.ref, x, pool.zeros('y', rows * cols), rstd, 1e-5)
    : await RmsNormBackwardOp.create(gpu, w.ref, gw.ref, pool.random('dy', rows * cols, 2), x, rstd, pool.zeros('dx', rows * cols), false);
  const p = await prepareRecorded(gpu, (rec) => op.record(rec, { rows }), pool.all);
  const n = rows * cols;
  return {
    seconds: p.seconds, destroy: () => (p.destroy(), w.destroy(), gw.destroy()),
    flops: (dir === 'fwd' ? 4 : 10) * n,
    bytes: dir === 'fwd' ? 4 * (2 * n + cols + rows) : 4 * (5 * n + 3 * cols + 2 * rows),
  };
}

/** Rotate-half RoPE in place on B·T rows of nH heads of hd: fwd rotates activations, bwd their gradient back. */
export async function prepareRope(gpu: Gpu, dir: 'fwd' | 'bwd', s: { B: number; T: number; nH: number; hd: number }): Promise<Prepared & Work> {
  const { B, T, nH, hd } = s;
  const pool = new Pool(gpu);
  const table = ropeTable(T, hd, 10000);
  const x = pool.random('q', B * T * nH * hd, 1);
  const op = await RopeOp.create(gpu, x, { cos: pool.from('cos', table.cos), sin: pool.from('sin', table.sin) }, { nHeads: nH, hd, layout: 'rows' }, dir);
  const p = await prepareRecorded(gpu, (rec) => op.record(rec, { rows: B * T, B, T }), pool.all);
  return { ...p, flops: 3 * B * T * nH * hd, bytes: 8 * B * T * nH * hd + 4 * T * hd };
}

/** SwiGLU over rows × width: fwd h = silu(g)∘u (reads g, u; writes h); bwd dg, du from dh, g, u. */
export async function prepareSwiGlu(gpu: Gpu, dir: 'fwd' | 'bwd', rows: number, width: number): Promise<Prepared & Work> {
  const pool = new Pool(gpu);
  const n = rows * width;
  const g = pool.random('g', n, 1);
  const u = pool.random('u', n, 2);
  const op = dir === 'fwd'
    ? await SwiGluOp.create(gpu, width, g, u, pool.zeros('h', n))
    : await SwiGluBackwardOp.create(gpu, width, pool.random('dh', n, 3), g, u, pool.zeros('dg', n), pool.zeros('du', n));
  const p = await prepareRecorded(gpu, (rec) => op.record(rec, { rows }), pool.all);
  return { ...p, flops: (dir === 'fwd' ? 5 : 10) * n, bytes: (dir === 'fwd' ? 12 : 20) * n };
}
