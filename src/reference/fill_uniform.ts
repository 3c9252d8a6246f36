/**
 * Plain-TypeScript reference of the synthetic weights (kernels/fill_uniform_fwd.wgsl): element i of
 * a tensor is d · scale + shift in f32, with d = (pcgHash(key ^ i) >> 8) · 2^-24 − 0.5 (exact in
 * f32) and the product rounded to f32 (Math.fround), as the kernel and
 * test/fixtures/make_llama7b_fixture.py compute them. Either shift is 0 (matrices) or scale is 0
 * (norm weights, exactly `shift`): no second rounding exists to disagree about.
 */
import { pcgHash } from '../util/hash.ts';

export function fillUniformValue(key: number, i: number, scale: number, shift: number): number {
  const d = (pcgHash((key ^ i) >>> 0) >>> 8) / 16777216 - 0.5;
  if (shift !== 0 && scale !== 0) throw new Error('fillUniformValue: either scale or shift must be 0');
  return Math.fround(d * Math.fround(scale)) + shift;
}

export function fillUniform(n: number, key: number, scale: number, shift: number, elemStart = 0): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = fillUniformValue(key, elemStart + i, scale, shift);
  return out;
}
