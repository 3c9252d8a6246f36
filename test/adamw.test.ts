import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Gpu } from '../src/gpu/device.ts';
import { readback, upload, type GpuBuffer } from '../src/gpu/buffers.ts';
import { Recorder } from '../src/gpu/kernels.ts';
import { AdamW, type AdamWParam } from '../src/optim/adamw.ts';
import { hfDecays } from '../src/model/weights.ts';
import { GradNorm } from '../src/optim/clip.ts';
import { adamwInit, adamwStep, gradNormClip, type AdamWState } from '../src/reference/adamw.ts';
import { f32ArrayToBf16 } from '../src/util/bf16.ts';
import { randomNormal } from '../src/util/random.ts';
import { TOL } from './tolerances.ts';
import { compareArrays, expectClose } from './util/compare.ts';
import { bufferFrom, emptyBuffer, gpu, readF32 } from './util/gpu.ts';

const BETA1 = 0.9;
const BETA2 = 0.999;
const EPS = 1e-8;

interface TensorSpec {
  name: string;
  n: number;
  decay: boolean;
  /** Keep a bf16 copy of this tensor (adamw_step with WRITE_BF16). */
  bf16: boolean;
}

interface RunConfig {
  specs: TensorSpec[];
  /** One buffer per kind holding every tensor at consecutive element offsets (else a buffer per tensor). */
  packed: boolean;
  /** First bf16 element used in a packed bf16 buffer: 1 puts every tensor at odd/shared-word offsets. */
  bf16Shift: number;
  init: Float32Array[];
  m0: Float32Array[];
  v0: Float32Array[];
  /** grads[step][tensor] */
  grads: Float32Array[][];
  lrs: number[];
  /** AdamW t of the first step (1 for a fresh run; > 1 resumes with non-zero m, v). */
  t0: number;
  weightDecay: number;
  maxNorm: number;
}

interface StepResult {
  master: Float32Array[];
  m: Float32Array[];
  v: Float32Array[];
  /** bf16 bits of each tensor's copy (empty when it has none). */
  bf16: Uint16Array[];
  /** Each tensor's whole bf16 buffer (sentinels included; one shared buffer when packed). */
  bf16Raw: Uint16Array[];
  totalNorm: number;
  clipCoef: number;
}

/** Sentinel bf16 bits in the packed bf16 buffer slots outside every tensor: must survive the steps. */
const SENTINEL = 0x3f81;

/** Runs the GPU optimizer over cfg.grads, reading everything back after each step. */
async function runGpu(g: Gpu, cfg: RunConfig, normTunables: { normPartialWg?: number; normPerThread?: number; normFinalizeWg?: number } = {}): Promise<StepResult[]> {
  const { specs } = cfg;
  const offsets: number[] = [];
  let total = 0;
  for (const s of specs) {
    offsets.push(cfg.packed ? total : 0);
    total += s.n;
  }
  const bf16Offsets: number[] = [];
  let bf16Total = cfg.bf16Shift;
  for (const s of specs) {
    bf16Offsets.push(cfg.packed ? bf16Total : 0);
    if (s.bf16) bf16Total += s.n;
  }
  const owned: GpuBuffer[] = [];
  const make = (data: ArrayBufferView) => {
    const b = bufferFrom(g, data);
    owned.push(b);
    return b;
  };
  const pack = (arrs: Float32Array[]) => {
    const all = new Float32Array(total);
    arrs.forEach((a, k) => all.set(a, offsets[k]));
    return all;
  };
  let master: GpuBuffer[], grad: GpuBuffer[], m: GpuBuffer[], v: GpuBuffer[], bf16: GpuBuffer[];
  if (cfg.packed) {
    const sentinel = new Uint16Array(bf16Total + 1).fill(SENTINEL);
    const one = (b: GpuBuffer) => specs.map(() => b);
    [master, grad, m, v, bf16] = [one(make(pack(cfg.init))), one(make(new Float32Array(total))), one(make(pack(cfg.m0))), one(make(pack(cfg.v0))), one(make(sentinel))];
  } else {
    master = cfg.init.map((a) => make(a));
    grad = specs.map((s) => make(new Float32Array(s.n)));
    m = cfg.m0.map((a) => make(a));
    v = cfg.v0.map((a) => make(a));
    bf16 = specs.map((s) => make(new Uint16Array(s.n + 1).fill(SENTINEL)));
  }
  const slice = (b: GpuBuffer, offset: number) => (cfg.packed ? { buf: b, offset } : b);
  const params: AdamWParam[] = specs.map((s, k) => ({
    name: s.name,
    n: s.n,
    decay: s.decay,
    master: slice(master[k], offsets[k]),
    grad: slice(grad[k], offsets[k]),
    m: slice(m[k], offsets[k]),
    v: slice(v[k], offsets[k]),
    bf16Copy: s.bf16 ? slice(bf16[k], bf16Offsets[k]) : undefined,
  }));
  const opt = await AdamW.create(g, params, { beta1: BETA1, beta2: BETA2, eps: EPS, weightDecay: cfg.weightDecay, maxGradNorm: cfg.maxNorm, ...normTunables });
  const results: StepResult[] = [];
  try {
    for (let step = 0; step < cfg.grads.length; step++) {
      cfg.grads[step].forEach((gr, k) => upload(g, grad[k], gr, offsets[k] * 4));
      const rec = new Recorder(g, 'adamw-test');
      opt.encodeStep(rec, cfg.t0 + step, cfg.lrs[step]);
      rec.submit();
      const norm = await opt.readGradNorm();
      const read = (bufs: GpuBuffer[]) => Promise.all(specs.map((s, k) => readF32(g, bufs[k], s.n, offsets[k])));
      const bf16Words = await Promise.all(specs.map(async (s, k) => new Uint16Array(await readback(g, bf16[k]))));
      results.push({
        master: await read(master),
        m: await read(m),
        v: await read(v),
        bf16: specs.map((s, k) => (s.bf16 ? bf16Words[k].slice(bf16Offsets[k], bf16Offsets[k] + s.n) : new Uint16Array(0))),
        bf16Raw: bf16Words,
        ...norm,
      });
    }
  } finally {
    opt.destroy();
    owned.forEach((b) => b.destroy());
  }
  return results;
}

/** The f64 reference over the same steps. */
function runReference(cfg: RunConfig): { states: AdamWState[][]; norms: { totalNorm: number; clipCoef: number }[] } {
  const state = cfg.init.map((p, k) => ({ ...adamwInit(p), m: Float64Array.from(cfg.m0[k]), v: Float64Array.from(cfg.v0[k]) }));
  const states: AdamWState[][] = [];
  const norms: { totalNorm: number; clipCoef: number }[] = [];
  cfg.grads.forEach((grads, step) => {
    const norm = gradNormClip(grads, cfg.maxNorm);
    norms.push(norm);
    state.forEach((s, k) => {
      const h = { lr: cfg.lrs[step], beta1: BETA1, beta2: BETA2, eps: EPS, weightDecay: cfg.specs[k].decay ? cfg.weightDecay : 0 };
      adamwStep(s, grads[k], cfg.t0 + step, h, norm.clipCoef);
    });
    states.push(state.map((s) => ({ param: s.param.slice(), m: s.m.slice(), v: s.v.slice() })));
  });
  return { states, norms };
}

/** A seeded config: weights ~ N(0, 1), grads ~ N(0, gradScale²); with t0 > 1 non-zero moments (a resumed run). */
function makeConfig(specs: TensorSpec[], seed: number, o: { packed: boolean; steps: number; t0: number; maxNorm: number; gradScale?: number; lr?: number }): RunConfig {
  const init = specs.map((s, k) => randomNormal(s.n, seed + k));
  const m0 = specs.map((s, k) => (o.t0 > 1 ? randomNormal(s.n, seed + 100 + k, 0.1) : new Float32Array(s.n)));
  const v0 = specs.map((s, k) => (o.t0 > 1 ? randomNormal(s.n, seed + 200 + k, 0.1).map((x) => x * x) : new Float32Array(s.n)));
  const grads = [...Array(o.steps).keys()].map((step) => specs.map((s, k) => randomNormal(s.n, seed + 1000 * (step + 1) + k, o.gradScale ?? 1)));
  const lr = o.lr ?? 1e-2;
  // A varying lr, as under a schedule, including a warmup-style lr 0 step when starting fresh.
  const lrs = grads.map((_, step) => (o.t0 === 1 && step === 0 ? 0 : lr * (1 - 0.1 * step)));
  return { specs, packed: o.packed, bf16Shift: o.packed ? 1 : 0, init, m0, v0, grads, lrs, t0: o.t0, weightDecay: 0.1, maxNorm: o.maxNorm };
}

function checkAgainstReference(cfg: RunConfig, gpuSteps: StepResult[]): void {
  const ref = runReference(cfg);
  gpuSteps.forEach((r, step) => {
    expectClose([r.totalNorm, r.clipCoef], [ref.norms[step].totalNorm, ref.norms[step].clipCoef], TOL.gradNorm, `step ${step} norm/coef`);
    cfg.specs.forEach((s, k) => {
      const st = ref.states[step][k];
      const what = `step ${step} ${s.name}`;
      expectClose(r.master[k], st.param, TOL.adamwParam, `${what} master`);
      expectClose(r.m[k], st.m, TOL.adamwMoments, `${what} m`);
      expectClose(r.v[k], st.v, TOL.adamwMoments, `${what} v`);
      if (s.bf16) {
        // The copy the forward reads is exactly round-to-nearest-even of the new f32 master.
        expect(Array.from(r.bf16[k]), `${what} bf16 copy`).toEqual(Array.from(f32ArrayToBf16(r.master[k])));
      }
    });
  });

}

const f32FromB64 = (s: string) => {
  const b = Buffer.from(s, 'base64');
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
};

interface TorchCase {
  name: string;
  weight_decay: number;
  max_norm: number;
  tensors: { name: string; n: number; decay: boolean }[];
  initial: string[];
  steps: { lr: number; grads: string[]; total_norm: number; params: string[]; exp_avg: string[]; exp_avg_sq: string[] }[];
}

const torchFixture = JSON.parse(readFileSync(new URL('./fixtures/adamw.json', import.meta.url), 'utf8')) as { cases: TorchCase[] };

function torchConfig(c: TorchCase, packed: boolean): RunConfig {
  const specs = c.tensors.map((t) => ({ name: t.name, n: t.n, decay: t.decay, bf16: true }));
  return {
    specs,
    packed,
    bf16Shift: packed ? 1 : 0,
    init: c.initial.map(f32FromB64),
    m0: specs.map((s) => new Float32Array(s.n)),
    v0: specs.map((s) => new Float32Array(s.n)),
    grads: c.steps.map((s) => s.grads.map(f32FromB64)),
    lrs: c.steps.map((s) => s.lr),
    t0: 1,
    weightDecay: c.weight_decay,
    maxNorm: c.max_norm,
  };
}

describe('adamw reference vs torch.optim.AdamW + clip_grad_norm_ (fixture)', () => {
  for (const c of torchFixture.cases) {
    it(`${c.name}: weights, moments and norm after each of ${c.steps.length} steps`, () => {
      const cfg = torchConfig(c, false);
      const ref = runReference(cfg);
      expect(c.tensors.map((t) => hfDecays(t.name))).toEqual(c.tensors.map((t) => t.decay));
      c.steps.forEach((s, step) => {
        expectClose([ref.norms[step].totalNorm], [s.total_norm], TOL.gradNorm, `step ${step} total norm`);
        c.tensors.forEach((t, k) => {
          const st = ref.states[step][k];
          expectClose(st.param, f32FromB64(s.params[k]), TOL.adamwTorch, `step ${step} ${t.name} param`);
          expectClose(st.m, f32FromB64(s.exp_avg[k]), TOL.adamwTorch, `step ${step} ${t.name} exp_avg`);
          expectClose(st.v, f32FromB64(s.exp_avg_sq[k]), TOL.adamwTorch, `step ${step} ${t.name} exp_avg_sq`);
        });
      });
    });
  }

  it('the first update of a warmup schedule has lr 0: weights unchanged, moments updated', () => {
    const c = torchFixture.cases.find((x) => x.steps[0].lr === 0)!;
    expect(c, 'fixture has a warmup case').toBeDefined();
    expect(Array.from(f32FromB64(c.steps[0].params[0]))).toEqual(Array.from(f32FromB64(c.initial[0])));
    expect(f32FromB64(c.steps[0].exp_avg[0]).some((x) => x !== 0)).toBe(true);
  });
});

describe('hfDecays', () => {
  it('decays matrices and embeddings, not RMSNorm weights or biases', () => {
    expect(hfDecays('model.embed_tokens.weight')).toBe(true);
    expect(hfDecays('lm_head.weight')).toBe(true);
    expect(hfDecays('model.layers.3.self_attn.q_proj.weight')).toBe(true);
    expect(hfDecays('model.layers.3.input_layernorm.weight')).toBe(false);
    expect(hfDecays('model.layers.3.post_attention_layernorm.weight')).toBe(false);
    expect(hfDecays('model.norm.weight')).toBe(false);
    expect(hfDecays('model.layers.0.mlp.up_proj.bias')).toBe(false);
  });
});

describe.skipIf(!gpu)('adamw_step.wgsl + grad_norm_*.wgsl (AdamW)', () => {
  for (const n of [45, 121, 1001]) {
    it(`single tensor n=${n}: resumed state (t = 5..8), clipping active, bf16 copy`, async () => {
      const cfg = makeConfig([{ name: `w${n}`, n, decay: true, bf16: true }], n, { packed: false, steps: 4, t0: 5, maxNorm: 1.0 });
      const out = await runGpu(gpu!, cfg);
      expect(out[0].clipCoef).toBeLessThan(1);
      checkAgainstReference(cfg, out);
      // The bf16 slot after the tensor (for odd n the other half of its last word) keeps its bits.
      for (const r of out) expect(r.bf16Raw[0][n]).toBe(SENTINEL);
    });
  }

  const multi: TensorSpec[] = [
    { name: 'model.embed_tokens.weight', n: 45, decay: true, bf16: true },
    { name: 'model.layers.0.input_layernorm.weight', n: 121, decay: false, bf16: true },
    { name: 'model.layers.0.mlp.down_proj.weight', n: 1001, decay: true, bf16: true },
    { name: 'model.norm.weight', n: 64, decay: false, bf16: false },
    { name: 'lm_head.weight', n: 7, decay: true, bf16: true },
  ];
  const clipCases: [string, number, (coef: number) => void][] = [
    ['active (max_norm 1)', 1.0, (coef) => expect(coef).toBeLessThan(1)],
    ['inactive (max_norm 1e6)', 1e6, (coef) => expect(coef).toBe(1)],
    ['disabled (max_norm 0)', 0, (coef) => expect(coef).toBe(1)],
  ];
  for (const [label, maxNorm, checkCoef] of clipCases) {
    it(`multi-tensor in shared buffers at odd offsets, decay on/off, clipping ${label}`, async () => {
      const cfg = makeConfig(multi, 77, { packed: true, steps: 3, t0: 1, maxNorm });
      const out = await runGpu(gpu!, cfg);
      out.forEach((r) => checkCoef(r.clipCoef));
      checkAgainstReference(cfg, out);
      // bf16 slots outside every tensor (slot 0, sharing a word with the first tensor's first
      // element, and the slot after the last tensor) keep their bits.
      const bf16Total = 1 + multi.filter((s) => s.bf16).reduce((a, s) => a + s.n, 0);
      for (const r of out) {
        expect(r.bf16Raw[0][0]).toBe(SENTINEL);
        expect(r.bf16Raw[0][bf16Total]).toBe(SENTINEL);
      }
      // First update with lr 0: weights exactly unchanged (weight decay is scaled by lr too).
      out[0].master.forEach((w, k) => expect(Array.from(w)).toEqual(Array.from(cfg.init[k])));
    });
  }

  for (const c of torchFixture.cases) {
    it(`matches torch's own f32 results: ${c.name}`, async () => {
      const out = await runGpu(gpu!, torchConfig(c, true));
      c.steps.forEach((s, step) => {
        expectClose([out[step].totalNorm], [s.total_norm], TOL.gradNorm, `step ${step} total norm`);
        c.tensors.forEach((t, k) => {
          expectClose(out[step].master[k], f32FromB64(s.params[k]), TOL.adamwTorch, `step ${step} ${t.name} param`);
          expectClose(out[step].m[k], f32FromB64(s.exp_avg[k]), TOL.adamwTorch, `step ${step} ${t.name} exp_avg`);
          expectClose(out[step].v[k], f32FromB64(s.exp_avg_sq[k]), TOL.adamwTorch, `step ${step} ${t.name} exp_avg_sq`);
        });
      });
    });
  }

  it('rejects grad/master/m/v slices with different offsets and slices that overflow their buffer', async () => {
    const g = gpu!;
    const buf = emptyBuffer(g, 64 * 4);
    const base: AdamWParam = { name: 'w', n: 32, decay: true, master: buf, grad: buf, m: buf, v: buf };
    try {
      await expect(AdamW.create(g, [{ ...base, grad: { buf, offset: 1 } }])).rejects.toThrow(/offset/);
      await expect(AdamW.create(g, [{ ...base, n: 65 }])).rejects.toThrow(/bytes/);
    } finally {
      buf.destroy();
    }
  });
});

describe.skipIf(!gpu)('grad_norm_partial.wgsl + grad_norm_finalize.wgsl (GradNorm)', () => {
  async function gpuNorm(grads: Float32Array[], packedOffsets: number[] | null, maxNorm: number, tunables: { partialWg?: number; perThread?: number; finalizeWg?: number }) {
    const g = gpu!;
    const bufs: GpuBuffer[] = [];
    let slices;
    if (packedOffsets) {
      const end = Math.max(...grads.map((a, k) => packedOffsets[k] + a.length));
      // Non-zero values outside the tensors: the kernel must not read past its slice.
      const all = randomNormal(end + 5, 999, 100);
      grads.forEach((a, k) => all.set(a, packedOffsets[k]));
      const b = bufferFrom(g, all);
      bufs.push(b);
      slices = grads.map((a, k) => ({ buf: b, offset: packedOffsets[k], n: a.length }));
    } else {
      slices = grads.map((a) => {
        const b = bufferFrom(g, a);
        bufs.push(b);
        return { buf: b, n: a.length };
      });
    }
    const gn = await GradNorm.create(g, slices, { maxNorm, ...tunables });
    try {
      const run = async () => {
        const rec = new Recorder(g, 'grad-norm-test');
        gn.encode(rec);
        rec.submit();
        return gn.read();
      };
      const first = await run();
      const second = await run();
      // Fixed summation order: bit-identical on a rerun.
      expect(second).toEqual(first);
      return { ...first, numPartials: gn.numPartials };
    } finally {
      gn.destroy();
      bufs.forEach((b) => b.destroy());
    }
  }

  it('one large tensor (n = 100003, 49 partials of 2048) vs the reference, clipping active', async () => {
    const grads = [randomNormal(100_003, 5, 0.01)];
    const ref = gradNormClip(grads, 1.0);
    const out = await gpuNorm(grads, null, 1.0, {});
    expect(out.numPartials).toBe(Math.ceil(100_003 / 2048));
    expect(ref.clipCoef).toBeLessThan(1);
    expectClose([out.totalNorm, out.clipCoef], [ref.totalNorm, ref.clipCoef], TOL.gradNorm, 'norm/coef');
  });

  it('many tensors at odd offsets in one buffer, > 800 partials (small chunks, finalize WG 64)', async () => {
    const sizes = [50_001, 3, 777, 1, 2048];
    const grads = sizes.map((n, k) => randomNormal(n, 50 + k, 0.001));
    const offsets: number[] = [];
    let at = 3;
    for (const n of sizes) {
      offsets.push(at);
      at += n + 2; // gaps of foreign values between tensors
    }
    const tunables = { partialWg: 64, perThread: 1, finalizeWg: 64 };
    for (const maxNorm of [1.0, 0.1, 0]) {
      const ref = gradNormClip(grads, maxNorm);
      const out = await gpuNorm(grads, offsets, maxNorm, tunables);
      expect(out.numPartials).toBeGreaterThan(800);
      if (maxNorm === 0) expect(out.clipCoef).toBe(1);
      expectClose([out.totalNorm, out.clipCoef], [ref.totalNorm, ref.clipCoef], TOL.gradNorm, `max_norm ${maxNorm}`);
    }
  });
});

it('test inputs are non-trivial', () => {
  const cfg = makeConfig([{ name: 'w', n: 45, decay: true, bf16: true }], 1, { packed: false, steps: 2, t0: 5, maxNorm: 1 });
  expect(new Set(cfg.grads[0][0]).size).toBe(45);
  expect(new Set(cfg.init[0]).size).toBe(45);
  expect(cfg.v0[0].every((x) => x > 0)).toBe(true);
  const r = compareArrays(cfg.grads[0][0], cfg.grads[1][0], { atol: 0, rtol: 0 });
  expect(r.bad).toBeGreaterThan(40);
});
