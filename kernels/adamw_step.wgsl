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
// Bindings:
//   @binding(0) params: { n, offset, bf16_offset, beta1, one_minus_beta1, beta2, one_minus_beta2,
//                         eps, decay (= 1 − lr·wd), step_size, bc2_sqrt }
//   @binding(1) norm:   array<f32> [2]          [total_norm, clip_coef] from grad_norm_finalize
//   @binding(2) grad:   array<f32> [offset + n] read; the tensor is [offset .. offset + n)
//   @binding(3) master: array<f32> [offset + n] f32 master weights, updated in place
//   @binding(4) m:      array<f32> [offset + n] first moment, updated in place
//   @binding(5) v:      array<f32> [offset + n] second moment, updated in place
//   @binding(6) w_bf16: array<u32> [ceil((bf16_offset + n) / 2)] with WRITE_BF16: the bf16 copy the
//                       forward reads, element i of the tensor at bf16 element bf16_offset + i,
//                       packed two per word (kernels/include/bf16.wgsl), = round-to-nearest-even
//                       of the new master value. Without WRITE_BF16 it is not touched (bind any
//                       buffer: the binding is part of the layout either way).
// Dispatch: grid1d(ceil(words / WG)) with words = ceil((bf16_offset + n) / 2) − floor(bf16_offset / 2)
// (thread k = linear_workgroup · WG + lid owns word floor(bf16_offset / 2) + k).
// Each thread owns one whole bf16 WORD, i.e. the (up to) two tensor elements packed in it, so no
// two threads write the same word. A word only half inside the tensor (odd bf16_offset, or odd
// bf16_offset + n) keeps its other half, which belongs to the neighbouring tensor: that tensor is
// updated by another dispatch, and WebGPU orders dispatches of a pass, so the read-modify-write is
// race-free. Without WRITE_BF16 the host passes bf16_offset = 0 (pairs of elements per thread).

//#include "grid.wgsl"
//#include "bf16.wgsl"

override WG: u32 = 256u;
override WRITE_BF16: bool = false;

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
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> norm: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> master: array<f32>;
@group(0) @binding(4) var<storage, read_write> m: array<f32>;
@group(0) @binding(5) var<storage, read_write> v: array<f32>;
@group(0) @binding(6) var<storage, read_write> w_bf16: array<u32>;

// Updates tensor element i (master, m, v) and returns the new master value.
fn adamw_update(i: u32, clip_coef: f32) -> f32 {
  let j = p.offset + i;
  let g = grad[j] * clip_coef;
  let m_new = m[j] * p.beta1 + p.one_minus_beta1 * g;
  let v_new = v[j] * p.beta2 + p.one_minus_beta2 * g * g;
  m[j] = m_new;
  v[j] = v_new;
  let denom = sqrt(v_new) / p.bc2_sqrt + p.eps;
  let w_new = master[j] * p.decay + (-p.step_size * m_new) / denom;
  master[j] = w_new;
  return w_new;
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
  if (in0) {
    w0 = adamw_update(e0 - p.bf16_offset, clip_coef);
  }
  if (in1) {
    w1 = adamw_update(e1 - p.bf16_offset, clip_coef);
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
