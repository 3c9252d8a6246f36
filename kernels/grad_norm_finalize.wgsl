// Gradient-norm pass 2 of 2: sums all partial sums of squares written by grad_norm_partial.wgsl
// (every tensor of the model) into the global L2 norm and the clipping coefficient of
// torch.nn.utils.clip_grad_norm_ (torch 1.13):
//   total_norm = sqrt(Σ partials)
//   clip_coef  = min(max_norm / (total_norm + 1e-6), 1.0)      (torch.clamp(..., max=1.0))
// max_norm <= 0 means "no clipping" (HF Trainer skips clip_grad_norm_ then): clip_coef = 1.
// The norm stays on the GPU: adamw_step.wgsl reads clip_coef from `norm`, so a whole optimizer
// step is one command encoder; the host reads total_norm back only to log it.
//
// Bindings:
//   @binding(0) params: { num_partials, max_norm }
//   @binding(1) partials: array<f32> [num_partials]
//   @binding(2) norm:     array<f32> [2]  norm[0] = total_norm, norm[1] = clip_coef (=)
// Dispatch: exactly one workgroup, (1, 1, 1). Thread t sums partials t, t + WG, t + 2·WG, ... in
// that order, then a shared-memory tree: a fixed order, so the norm is deterministic.

// Must be a power of two (tree reduction).
override WG: u32 = 256u;

struct Params {
  num_partials: u32,
  max_norm: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> partials: array<f32>;
@group(0) @binding(2) var<storage, read_write> norm: array<f32>;

var<workgroup> red: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
  var sum = 0.0;
  for (var i = lid; i < p.num_partials; i += WG) {
    sum += partials[i];
  }
  red[lid] = sum;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) {
      red[lid] += red[lid + stride];
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    let total_norm = sqrt(red[0]);
    var coef = 1.0;
    if (p.max_norm > 0.0) {
      coef = min(p.max_norm / (total_norm + 1e-6), 1.0);
    }
    norm[0] = total_norm;
    norm[1] = coef;
  }
}
