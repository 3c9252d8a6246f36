// One AdamW update of one parameter tensor (or a chunk of one), in f32, replicating
// torch.optim.AdamW's `_single_tensor_adamw` (torch 1.13, amsgrad=False, maximize=False), which is
// what the HF Trainer's `adamw_torch` runs, with the clip_grad_norm_ coefficient folded in:
//   g  = grad · clip_coef                         (clip_grad_norm_ scales the grads in place)
//   w  = w · (1 − lr·wd)                          param.mul_(1 - lr * weight_decay)
//   m  = m·β1 + (1−β1)·g                          exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
//   v  = v·β2 + (1−β2)·g·g                        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
//   denom = sqrt(v) / sqrt(1 − β2^t) + eps        (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
//   w  = w + (−step_size · m) / denom             param.addcdiv_(exp_avg, denom, value=-step_size),
//                                                 step_size = lr / (1 − β1^t)
// Every scalar (1−β1, 1−β2, 1−lr·wd, step_size, sqrt(1−β2^t)) is computed by the host in f64 and
// rounded to f32 once, as torch does with its Python-float scalars. The grad buffer is not
// modified (torch clips it in place; here the trainer clears the grads before the next step).
//
// With MOMENTS_BF16 the moments are STORED in bf16 (the full fine-tune's 18 bytes/parameter become
// 14): each step unpacks m and v exactly to f32, runs the f32 math above in registers, updates the
// weights with the unrounded f32 m and v, and stores m and v rounded to bf16:
//   MOMENTS_SR (default): stochastic rounding, E[stored] = the f32 value: with b the f32 bits and
//     r16 16 random bits, stored = (b + r16) >> 16 (rounds the magnitude up with probability
//     (b & 0xffff) / 2^16; ±0 stays ±0; Inf/NaN as RNE). RNE would freeze v: with β2 = 0.999 a
//     step changes v by 0.1%, below half a bf16 ulp (0.2-0.4%), so v could not decay.
//   !MOMENTS_SR: round to nearest even (bf16_round_bits), kept to measure against (bench/optim-dtype.ts).
// Random bits: a counter-based hash of (seed, step t, stream, element index), so a run is
// deterministic and resumable and independent of how tensors are chunked or dispatched:
//   lowbias32(x): x ^= x >> 16; x *= 0x7feb352d; x ^= x >> 15; x *= 0x846ca68b; x ^= x >> 16
//                 (C. Wellons' hash-prospector, a bijection on u32)
//   key = lowbias32(lowbias32(lowbias32(seed) ^ t) ^ stream)
//   r   = lowbias32(key ^ (rng_offset + i))          for tensor-chunk element i
//   m uses r & 0xffff, v uses r >> 16.
// `stream` names the tensor (the trainer: its index in the parameter table) and rng_offset + i is
// the element's index in that tensor (the trainer: the chunk's first element + i).
//
// Bindings:
//   @binding(0) params: { n, offset, bf16_offset, beta1, one_minus_beta1, beta2, one_minus_beta2,
//                         eps, decay (= 1 − lr·wd), step_size, bc2_sqrt, seed, t, stream, rng_offset }
//   @binding(1) norm:   array<f32> [2]          [total_norm, clip_coef] from grad_norm_finalize
//   @binding(2) grad:   array<f32> [offset + n] read; the tensor is [offset .. offset + n)
//   @binding(3) master: array<f32> [offset + n] f32 master weights, updated in place
//   @binding(4) m:      array<u32>              first moment, updated in place:
//                       f32 bits [offset + n] (element i at offset + i), or with MOMENTS_BF16
//                       bf16 packed two per word [ceil((bf16_offset + n) / 2)] (element i at bf16
//                       element bf16_offset + i, the layout of w_bf16)
//   @binding(5) v:      array<u32>              second moment, laid out as m
//   @binding(6) w_bf16: array<u32> [ceil((bf16_offset + n) / 2)] with WRITE_BF16: the bf16 copy the
//                       forward reads, element i of the tensor at bf16 element bf16_offset + i,
//                       packed two per word (kernels/include/bf16.wgsl), = round-to-nearest-even
//                       of the new master value. Without WRITE_BF16 it is not touched (bind any
//                       buffer: the binding is part of the layout either way).
// Dispatch: grid1d(ceil(words / WG)) with words = ceil((bf16_offset + n) / 2) − floor(bf16_offset / 2)
// (thread k = linear_workgroup · WG + lid owns word floor(bf16_offset / 2) + k).
// Each thread owns one whole bf16 WORD, i.e. the (up to) two tensor elements packed in it, so no
// two threads write the same word: of w_bf16, and with MOMENTS_BF16 of m and v too (they share
// w_bf16's bf16 offset). A word only half inside the tensor (odd bf16_offset, or odd
// bf16_offset + n) keeps its other half, which belongs to the neighbouring tensor: that tensor is
// updated by another dispatch, and WebGPU orders dispatches of a pass, so the read-modify-write is
// race-free. Without WRITE_BF16 and MOMENTS_BF16 the host passes bf16_offset = 0 (pairs of
// elements per thread). All = (in-place updates), nothing accumulates.

//#include "grid.wgsl"
//#include "bf16.wgsl"

override WG: u32 = 256u;
override WRITE_BF16: bool = false;
override MOMENTS_BF16: bool = false;
override MOMENTS_SR: bool = true;

struct Params {
  n: u32,
  offset: u32,
  bf16_offset: u32,
  beta1: f32,
  one_minus_beta1: f32,
  beta2: f32,
  one_minus_beta2: f32,
  eps: f32,
  decay: f32,
  step_size: f32,
  bc2_sqrt: f32,
  seed: u32,
  t: u32,
  stream: u32,
  rng_offset: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> norm: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> master: array<f32>;
@group(0) @binding(4) var<storage, read_write> m: array<u32>;
@group(0) @binding(5) var<storage, read_write> v: array<u32>;
@group(0) @binding(6) var<storage, read_write> w_bf16: array<u32>;

struct Updated {
  w: f32,
  m: f32,
  v: f32,
}

// Updates the master weight of tensor element i from its old moments; returns the new weight and
// the new (unrounded) moments.
fn adamw_update(i: u32, m_old: f32, v_old: f32, clip_coef: f32) -> Updated {
  let j = p.offset + i;
  let g = grad[j] * clip_coef;
  let m_new = m_old * p.beta1 + p.one_minus_beta1 * g;
  let v_new = v_old * p.beta2 + p.one_minus_beta2 * g * g;
  let denom = sqrt(v_new) / p.bc2_sqrt + p.eps;
  let w_new = master[j] * p.decay + (-p.step_size * m_new) / denom;
  master[j] = w_new;
  return Updated(w_new, m_new, v_new);
}

// f32 moments: element i at offset + i, stored as f32 bits.
fn update_f32_moments(i: u32, clip_coef: f32) -> f32 {
  let j = p.offset + i;
  let u = adamw_update(i, bitcast<f32>(m[j]), bitcast<f32>(v[j]), clip_coef);
  m[j] = bitcast<u32>(u.m);
  v[j] = bitcast<u32>(u.v);
  return u.w;
}

fn lowbias32(x0: u32) -> u32 {
  var x = x0;
  x ^= x >> 16u;
  x *= 0x7feb352du;
  x ^= x >> 15u;
  x *= 0x846ca68bu;
  x ^= x >> 16u;
  return x;
}

// bf16 bits of x rounded stochastically with the 16 random bits r16 (see the header).
fn bf16_stochastic_bits(x: f32, r16: u32) -> u32 {
  let b = bitcast<u32>(x);
  if ((b & 0x7f800000u) == 0x7f800000u) {
    return bf16_round_bits(x);
  }
  return (b + r16) >> 16u;
}

fn round_moment(x: f32, r16: u32) -> u32 {
  if (MOMENTS_SR) {
    return bf16_stochastic_bits(x, r16);
  }
  return bf16_round_bits(x);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let k = linear_workgroup(wg, nwg) * WG + lid;
  let first_word = p.bf16_offset / 2u;
  let end = p.bf16_offset + p.n;
  if (k >= (end + 1u) / 2u - first_word) {
    return;
  }
  let word = first_word + k;
  // The word's two bf16 slots, as bf16 element indices; each is ours when inside the tensor.
  let e0 = 2u * word;
  let e1 = e0 + 1u;
  let in0 = e0 >= p.bf16_offset && e0 < end;
  let in1 = e1 < end;
  let clip_coef = norm[1];
  var w0 = 0.0;
  var w1 = 0.0;
  if (MOMENTS_BF16) {
    // The whole moment words are ours; a half outside the tensor is written back unchanged.
    let mw = m[word];
    let vw = v[word];
    var m_lo = mw & 0xffffu;
    var m_hi = mw >> 16u;
    var v_lo = vw & 0xffffu;
    var v_hi = vw >> 16u;
    let key = lowbias32(lowbias32(lowbias32(p.seed) ^ p.t) ^ p.stream);
    if (in0) {
      let i = e0 - p.bf16_offset;
      let u = adamw_update(i, bf16_unpack(mw, 0u), bf16_unpack(vw, 0u), clip_coef);
      let r = lowbias32(key ^ (p.rng_offset + i));
      m_lo = round_moment(u.m, r & 0xffffu);
      v_lo = round_moment(u.v, r >> 16u);
      w0 = u.w;
    }
    if (in1) {
      let i = e1 - p.bf16_offset;
      let u = adamw_update(i, bf16_unpack(mw, 1u), bf16_unpack(vw, 1u), clip_coef);
      let r = lowbias32(key ^ (p.rng_offset + i));
      m_hi = round_moment(u.m, r & 0xffffu);
      v_hi = round_moment(u.v, r >> 16u);
      w1 = u.w;
    }
    m[word] = m_lo | (m_hi << 16u);
    v[word] = v_lo | (v_hi << 16u);
  } else {
    if (in0) {
      w0 = update_f32_moments(e0 - p.bf16_offset, clip_coef);
    }
    if (in1) {
      w1 = update_f32_moments(e1 - p.bf16_offset, clip_coef);
    }
  }
  if (WRITE_BF16) {
    var old = 0u;
    if (!(in0 && in1)) {
      old = w_bf16[word];
    }
    let lo = select(old & 0xffffu, bf16_round_bits(w0), in0);
    let hi = select(old >> 16u, bf16_round_bits(w1), in1);
    w_bf16[word] = lo | (hi << 16u);
  }
}
