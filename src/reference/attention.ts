/**
 * Plain-TypeScript reference of causal scaled-dot-product attention with grouped-query heads
 * (HF LlamaAttention with repeat_kv), written as loops independently of the kernels, in f64.
 *
 * Shapes (B = batch, T = queries per sequence, Tmax = KV-cache rows per sequence, nH = query
 * heads, nKV = key/value heads, hd = head width):
 *   q   [B*T, nH*hd]       row b*T + t, head h at columns h*hd ..; RoPE already applied
 *   k,v [B, Tmax, nKV*hd]  row b*Tmax + s = key/value position s of sequence b
 *   o   [B*T, nH*hd]
 *   lse [B*T*nH]           at (b*T + t)*nH + h
 * Query t sits at absolute position i = pos0 + t and sees key positions 0 ..= i; query head h
 * reads kv head h / (nH / nKV). Forward, for one (b, t, h):
 *   s_j = scale · q·k_j,  lse = log Σ_j exp(s_j),  P_j = exp(s_j - lse),  o = Σ_j P_j v_j
 */
export interface AttentionDims {
  B: number;
  T: number;
  Tmax: number;
  pos0: number;
  nH: number;
  nKV: number;
  hd: number;
  scale: number;
}

function checkDims(d: AttentionDims): void {
  if (d.nH % d.nKV !== 0) throw new Error(`nH ${d.nH} is not a multiple of nKV ${d.nKV}`);
  if (d.pos0 + d.T > d.Tmax) throw new Error(`pos0 ${d.pos0} + T ${d.T} exceeds the cache length Tmax ${d.Tmax}`);
}

/** Softmax probabilities of query (b, t, h) over its visible keys 0 ..= pos0 + t, plus the log-sum-exp. */
function probabilities(q: ArrayLike<number>, k: ArrayLike<number>, d: AttentionDims, b: number, t: number, h: number) {
  const { T, Tmax, nH, nKV, hd, scale } = d;
  const g = Math.floor(h / (nH / nKV));
  const n = d.pos0 + t + 1;
  const s = new Float64Array(n);
  let max = -Infinity;
  for (let j = 0; j < n; j++) {
    let acc = 0;
    for (let c = 0; c < hd; c++) acc += q[(b * T + t) * nH * hd + h * hd + c] * k[(b * Tmax + j) * nKV * hd + g * hd + c];
    s[j] = scale * acc;
    max = Math.max(max, s[j]);
  }
  let sum = 0;
  for (let j = 0; j < n; j++) sum += Math.exp(s[j] - max);
  const lse = max + Math.log(sum);
  const p = s.map((x) => Math.exp(x - lse));
  return { p, lse, g };
}

export function attentionForward(q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>, d: AttentionDims) {
  checkDims(d);
  const { B, T, Tmax, nH, nKV, hd } = d;
  const o = new Float64Array(B * T * nH * hd);
  const lse = new Float64Array(B * T * nH);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      for (let h = 0; h < nH; h++) {
        const { p, lse: l, g } = probabilities(q, k, d, b, t, h);
        lse[(b * T + t) * nH + h] = l;
        for (let j = 0; j < p.length; j++) {
          for (let c = 0; c < hd; c++) o[(b * T + t) * nH * hd + h * hd + c] += p[j] * v[(b * Tmax + j) * nKV * hd + g * hd + c];
        }
      }
    }
  }
  return { o, lse };
}

/**
 * Analytic backward for loss L with dL/do = dout, per (b, t, h), P recomputed as in the forward:
 *   o = Σ_j P_j v_j                  → dv_j += P_j · dout
 *   dP_j = dout·v_j
 *   P = softmax(s)                   → ds_j = P_j (dP_j - Σ_k P_k dP_k)
 *   s_j = scale · q·k_j              → dq += scale · ds_j k_j,  dk_j += scale · ds_j q
 * dk/dv sum over every query head sharing the kv head, and are 0 on cache rows no query sees.
 */
export function attentionBackward(dout: ArrayLike<number>, q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>, d: AttentionDims) {
  checkDims(d);
  const { B, T, Tmax, nH, nKV, hd, scale } = d;
  const dq = new Float64Array(B * T * nH * hd);
  const dk = new Float64Array(B * Tmax * nKV * hd);
  const dv = new Float64Array(B * Tmax * nKV * hd);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      for (let h = 0; h < nH; h++) {
        const { p, g } = probabilities(q, k, d, b, t, h);
        const qo = (b * T + t) * nH * hd + h * hd;
        const kvo = (j: number) => (b * Tmax + j) * nKV * hd + g * hd;
        const dp = new Float64Array(p.length);
        let pdp = 0;
        for (let j = 0; j < p.length; j++) {
          for (let c = 0; c < hd; c++) dp[j] += dout[qo + c] * v[kvo(j) + c];
          pdp += p[j] * dp[j];
        }
        for (let j = 0; j < p.length; j++) {
          const ds = p[j] * (dp[j] - pdp);
          for (let c = 0; c < hd; c++) {
            dv[kvo(j) + c] += p[j] * dout[qo + c];
            dq[qo + c] += scale * ds * k[kvo(j) + c];
            dk[kvo(j) + c] += scale * ds * q[qo + c];
          }
        }
      }
    }
  }
  return { dq, dk, dv };
}
