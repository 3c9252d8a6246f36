/**
 * f32 <-> bf16 / f16 conversions on bit patterns, the way PyTorch does them.
 *
 * bf16 = the top 16 bits of an f32 (1 sign, 8 exponent, 7 mantissa bits). We store bf16 values as
 * their bits in a Uint16Array (WGSL has no bf16 type: the kernels unpack with `bitcast<f32>(w << 16)`).
 *
 * f32 -> bf16 rounds to nearest, ties to even, like c10::BFloat16's round_to_nearest_even:
 *   bits16 = (bits32 + 0x7FFF + ((bits32 >> 16) & 1)) >> 16
 * Overflow rounds to ±Inf (e.g. f32 max -> Inf), and every NaN becomes torch's canonical 0x7FC0.
 * f32 -> f16 also rounds to nearest-even (subnormals included); NaN becomes sign | 0x7E00 (torch).
 * bf16 -> f32 and f16 -> f32 are exact.
 *
 * Assumes a little-endian host (checked once in src/formats/safetensors.ts): typed-array views of the
 * same buffer reinterpret bits in host order.
 */

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** The IEEE bits of `x` rounded to f32. */
export function f32Bits(x: number): number {
  scratchF32[0] = x;
  return scratchU32[0];
}

/** The f32 whose bits are `u` (an unsigned 32-bit integer). */
export function f32FromBits(u: number): number {
  scratchU32[0] = u >>> 0;
  return scratchF32[0];
}

/** f32 bits -> bf16 bits, round to nearest even; NaN -> 0x7FC0. */
export function f32BitsToBf16Bits(u: number): number {
  u = u >>> 0;
  if ((u & 0x7f800000) === 0x7f800000 && (u & 0x007fffff) !== 0) return 0x7fc0;
  // Non-NaN: u + 0x8000 < 2^32 (the largest, -Inf = 0xFF800000), so `>>> 16` sees no wrap-around.
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/** A number (rounded to f32 first) -> bf16 bits. */
export function f32ToBf16Bits(x: number): number {
  return f32BitsToBf16Bits(f32Bits(x));
}

/** bf16 bits -> the (exactly representable) number. */
export function bf16BitsToF32(h: number): number {
  return f32FromBits((h & 0xffff) << 16);
}

/** Float32Array -> bf16 bits, round to nearest even. `dst` may be given to avoid an allocation. */
export function f32ArrayToBf16(src: Float32Array, dst: Uint16Array<ArrayBuffer> = new Uint16Array(src.length)): Uint16Array<ArrayBuffer> {
  if (dst.length !== src.length) throw new Error(`f32ArrayToBf16: length ${src.length} -> ${dst.length}`);
  const u = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < u.length; i++) {
    const b = u[i];
    dst[i] =
      (b & 0x7f800000) === 0x7f800000 && (b & 0x007fffff) !== 0 ? 0x7fc0 : (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
  }
  return dst;
}

/** bf16 bits -> Float32Array (exact). */
export function bf16ArrayToF32(src: Uint16Array, dst: Float32Array<ArrayBuffer> = new Float32Array(src.length)): Float32Array<ArrayBuffer> {
  if (dst.length !== src.length) throw new Error(`bf16ArrayToF32: length ${src.length} -> ${dst.length}`);
  const u = new Uint32Array(dst.buffer, dst.byteOffset, dst.length);
  for (let i = 0; i < src.length; i++) u[i] = src[i] << 16;
  return dst;
}

/** f32 bits -> f16 bits, round to nearest even (subnormals too); overflow -> ±Inf; NaN -> sign | 0x7E00. */
export function f32BitsToF16Bits(u: number): number {
  u = u >>> 0;
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  let mant = u & 0x7fffff;
  if (exp === 0xff) return sign | (mant !== 0 ? 0x7e00 : 0x7c00);
  const e = exp - 127 + 15; // f16 biased exponent
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    // f16 subnormal: value = r * 2^-24, and value = (1.mant) * 2^(exp-127) = (mant | 2^23) * 2^(exp-150),
    // so r = (mant | 2^23) >> (14 - e) before rounding. e < -10 means value < 2^-25: rounds to zero.
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e; // 14..24
    const half = 1 << (shift - 1);
    const rem = mant & ((1 << shift) - 1);
    let r = mant >>> shift;
    if (rem > half || (rem === half && (r & 1) !== 0)) r++; // may carry into the smallest normal: correct
    return sign | r;
  }
  let r = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (r & 1) !== 0)) r++; // a carry may overflow into Inf: correct
  return sign | r;
}

/** A number (rounded to f32 first) -> f16 bits. */
export function f32ToF16Bits(x: number): number {
  return f32BitsToF16Bits(f32Bits(x));
}

/** f16 bits -> the (exactly representable) number. */
export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m !== 0 ? NaN : sign * Infinity;
  return sign * (1024 + m) * 2 ** (e - 25);
}

let f16Table: Float32Array | undefined;

/** f16 bits -> Float32Array (exact), through a 65536-entry table built on first use. */
export function f16ArrayToF32(src: Uint16Array, dst: Float32Array<ArrayBuffer> = new Float32Array(src.length)): Float32Array<ArrayBuffer> {
  if (dst.length !== src.length) throw new Error(`f16ArrayToF32: length ${src.length} -> ${dst.length}`);
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16BitsToF32(h);
  }
  const t = f16Table;
  for (let i = 0; i < src.length; i++) dst[i] = t[src[i]];
  return dst;
}

/** Float32Array -> f16 bits, round to nearest even. */
export function f32ArrayToF16(src: Float32Array, dst: Uint16Array<ArrayBuffer> = new Uint16Array(src.length)): Uint16Array<ArrayBuffer> {
  if (dst.length !== src.length) throw new Error(`f32ArrayToF16: length ${src.length} -> ${dst.length}`);
  const u = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < u.length; i++) dst[i] = f32BitsToF16Bits(u[i]);
  return dst;
}
