/**
 * Plain-TypeScript reference of rotary position embeddings, HF "rotate-half" convention
 * (LlamaRotaryEmbedding / apply_rotary_pos_emb), f64 arithmetic on the given cos/sin table.
 *
 * Shapes: x [B, T, nHeads, hd] (row b*T + t holds nHeads head vectors of hd), position of (b, t) is
 * pos0 + t; cos/sin [maxPos, hd/2] (src/model/rope-table.ts). For a head vector v, half = hd/2, i < half:
 *   out[i]        = v[i] cos[p,i] - v[i+half] sin[p,i]
 *   out[i + half] = v[i+half] cos[p,i] + v[i] sin[p,i]
 * (HF: q*cos + rotate_half(q)*sin with rotate_half(q) = cat(-q[half:], q[:half]) and cos = cat(c, c).)
 */
export interface RopeShape {
  B: number;
  T: number;
  nHeads: number;
  hd: number;
  pos0: number;
}

function rotate(src: ArrayLike<number>, cos: ArrayLike<number>, sin: ArrayLike<number>, s: RopeShape, sign: 1 | -1): Float64Array {
  const { B, T, nHeads, hd, pos0 } = s;
  const half = hd / 2;
  const out = new Float64Array(B * T * nHeads * hd);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const p = pos0 + t;
      for (let h = 0; h < nHeads; h++) {
        const base = ((b * T + t) * nHeads + h) * hd;
        for (let i = 0; i < half; i++) {
          const c = cos[p * half + i];
          const sn = sign * sin[p * half + i];
          const lo = src[base + i];
          const hi = src[base + i + half];
          out[base + i] = lo * c - hi * sn;
          out[base + i + half] = hi * c + lo * sn;
        }
      }
    }
  }
  return out;
}

/** y = RoPE(x) at positions pos0 + t. */
export function ropeForward(x: ArrayLike<number>, cos: ArrayLike<number>, sin: ArrayLike<number>, s: RopeShape): Float64Array {
  return rotate(x, cos, sin, s, 1);
}

/**
 * Backward of the forward's per-pair rotation [y_i, y_{i+half}] = R(θ) [x_i, x_{i+half}],
 * R(θ) = [[c, -s], [s, c]]: dx = R(θ)ᵀ dy = R(-θ) dy, i.e.
 *   dx[i]        = dy[i] c + dy[i+half] s
 *   dx[i + half] = dy[i+half] c - dy[i] s
 */
export function ropeBackward(dy: ArrayLike<number>, cos: ArrayLike<number>, sin: ArrayLike<number>, s: RopeShape): Float64Array {
  return rotate(dy, cos, sin, s, -1);
}
