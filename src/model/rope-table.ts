/**
 * The RoPE cos/sin table, computed on the CPU with PyTorch/HF's float32 arithmetic so the kernels
 * rotate by exactly the angles HF LlamaRotaryEmbedding uses:
 *
 *   inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim))    # every op in f32
 *   freqs    = position.float() * inv_freq                                # f32 product
 *   cos, sin = freqs.cos(), freqs.sin()                                   # f32 results
 *
 * Each f32 operation is emulated as the exact (f64) operation rounded to f32 with Math.fround:
 * division and multiplication of f32 operands are then bit-exact (f64 carries more than
 * 2·24 + 2 bits, so the double rounding is innocuous); pow, cos and sin are exact to within the
 * last f32 bit (torch's own f32 pow/cos/sin are not correctly rounded either: against torch 1.13,
 * inv_freq is bit-identical and cos/sin differ by at most one f32 ulp, for hd 10..128, θ 1e4 and
 * 5e5, 4096 positions). The f32 angle's error (relative ~1e-7, so cos/sin off the exact f64 values
 * by up to 7e-5 at position 2047) is HF's, and reproducing it is the point: a table computed in
 * f64 would drift from a PyTorch-trained model at long positions.
 */
export interface RopeTable {
  /** cos[p * half + i] = cos(p · inv_freq[i]), [maxPos, half]. */
  cos: Float32Array;
  /** sin[p * half + i] = sin(p · inv_freq[i]), [maxPos, half]. */
  sin: Float32Array;
  maxPos: number;
  half: number;
}

/** HF's float32 inverse frequencies: inv_freq[i] = 1 / theta^((2i)/hd), [hd / 2]. */
export function ropeInvFreq(hd: number, theta: number): Float32Array {
  if (!Number.isInteger(hd) || hd < 2 || hd % 2 !== 0) throw new Error(`ropeInvFreq: head dim ${hd} must be a positive even integer`);
  if (!(theta > 0)) throw new Error(`ropeInvFreq: theta ${theta} must be positive`);
  const half = hd / 2;
  const invFreq = new Float32Array(half);
  const base = Math.fround(theta);
  for (let i = 0; i < half; i++) {
    const exponent = Math.fround((2 * i) / hd); // arange(0, dim, 2).float() / dim
    const power = Math.fround(base ** exponent); // base ** tensor, f32 result
    invFreq[i] = Math.fround(1 / power); // 1.0 / tensor, f32
  }
  return invFreq;
}

/** cos/sin for positions [0, maxPos), [maxPos, hd / 2] each, as HF computes them in f32. */
export function ropeTable(maxPos: number, hd: number, theta: number): RopeTable {
  if (!Number.isInteger(maxPos) || maxPos < 1) throw new Error(`ropeTable: maxPos ${maxPos} must be a positive integer`);
  const invFreq = ropeInvFreq(hd, theta);
  const half = hd / 2;
  const cos = new Float32Array(maxPos * half);
  const sin = new Float32Array(maxPos * half);
  for (let p = 0; p < maxPos; p++) {
    for (let i = 0; i < half; i++) {
      const angle = Math.fround(p * invFreq[i]); // position (exact in f32 below 2^24) × inv_freq, f32
      cos[p * half + i] = Math.cos(angle); // stored as f32: rounded once
      sin[p * half + i] = Math.sin(angle);
    }
  }
  return { cos, sin, maxPos, half };
}
