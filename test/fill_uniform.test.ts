/**
 * Synthetic weights on the GPU (kernels/fill_uniform_fwd.wgsl, src/model/synthetic.ts) against the
 * reference (src/reference/fill_uniform.ts): bit-exact f32 values and their bf16 rounding, chunks
 * that start mid-tensor and mid-word, neighbours left untouched; a whole model's tables filled.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { grid1d } from '../src/gpu/kernels.ts';
import { loadLlamaConfig } from '../src/formats/hf-checkpoint.ts';
import { LlamaModel } from '../src/model/llama.ts';
import { fillSynthetic, syntheticBase } from '../src/model/synthetic.ts';
import { fillUniform } from '../src/reference/fill_uniform.ts';
import { bf16ArrayToF32, f32ArrayToBf16 } from '../src/util/bf16.ts';
import { randomNormal } from '../src/util/random.ts';
import { bufferFrom, gpu, readF32, runOnce } from './util/gpu.ts';
import { readback } from '../src/gpu/buffers.ts';

const WG = 256;
const CASES = [
  { n: 45, elemStart: 0, outOffset: 0, scale: 0.0693, shift: 0 },
  { n: 121, elemStart: 1000, outOffset: 7, scale: 2 / Math.sqrt(45), shift: 0 },
  { n: 67, elemStart: 3, outOffset: 2, scale: 0, shift: 1 },
  { n: 512, elemStart: 2 ** 31, outOffset: 256, scale: 0.0346, shift: 0 },
];

describe.skipIf(!gpu)('fill_uniform_fwd.wgsl', () => {
  for (const c of CASES) {
    it(`f32: bit-exact at n=${c.n} elem_start=${c.elemStart} out_offset=${c.outOffset}, neighbours kept`, async () => {
      const g = gpu!;
      const total = c.outOffset + c.n + 5;
      const prior = randomNormal(total, 3);
      const buf = bufferFrom(g, prior);
      const key = 0x1234567 + c.n;
      await runOnce(g, 'fill_uniform_fwd.wgsl', { constants: { WG, W_BF16: false }, params: ['uuuuff', [c.n, c.elemStart, c.outOffset, key, c.scale, c.shift]], bindings: [buf], grid: grid1d(Math.ceil(c.n / WG)) });
      const want = Float32Array.from(prior);
      want.set(fillUniform(c.n, key, c.scale, c.shift, c.elemStart), c.outOffset);
      expect(Array.from(await readF32(g, buf, total))).toEqual(Array.from(want));
    });

    it(`bf16: the round-to-nearest-even of the same values at n=${c.n} out_offset=${c.outOffset}, the other half of edge words kept`, async () => {
      const g = gpu!;
      const total = c.outOffset + c.n + 3;
      const prior = f32ArrayToBf16(randomNormal(total + (total % 2), 4));
      const buf = bufferFrom(g, prior);
      const key = 0xabcdef + c.n;
      const words = Math.ceil(((c.outOffset % 2) + c.n) / 2);
      await runOnce(g, 'fill_uniform_fwd.wgsl', { constants: { WG, W_BF16: true }, params: ['uuuuff', [c.n, c.elemStart, c.outOffset, key, c.scale, c.shift]], bindings: [buf], grid: grid1d(Math.ceil(words / WG)) });
      const want = Uint16Array.from(prior);
      want.set(f32ArrayToBf16(fillUniform(c.n, key, c.scale, c.shift, c.elemStart)), c.outOffset);
      const got = new Uint16Array(await readback(g, buf, 0, prior.byteLength));
      expect(Array.from(got)).toEqual(Array.from(want));
    });
  }

  it('fills every tensor of a model (f32 and bf16 tables, split into chunks) with its generator', async () => {
    const g = gpu!;
    const cfg = loadLlamaConfig(path.join(import.meta.dirname, 'fixtures', 'train-tiny'));
    const gens = syntheticBase(cfg, 7);
    for (const dtype of ['f32', 'bf16'] as const) {
      const model = LlamaModel.allocate(g, cfg, dtype, 24 * 1024);
      await fillSynthetic(g, model.weights, gens);
      for (const e of model.table.entries) {
        const t = gens.get(e.spec.name)!;
        const want = fillUniform(e.rowsTotal * e.cols, t.key, t.scale, t.shift);
        const got = await model.weights.readTensor(e);
        const gotF32 = dtype === 'f32' ? (got as Float32Array) : bf16ArrayToF32(got as Uint16Array);
        const wantDtype = dtype === 'f32' ? want : bf16ArrayToF32(f32ArrayToBf16(want));
        expect(Array.from(gotF32), e.spec.name).toEqual(Array.from(wantDtype));
      }
      model.destroy();
    }
  });
});
