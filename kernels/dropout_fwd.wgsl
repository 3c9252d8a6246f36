// Scaled dropout of a LoRA module's input (PEFT: lora_B(lora_A(dropout(x))) · alpha / r), with the
// LoRA scale folded in so that the two matmuls after it need no scaling:
//   out[i] = x[i] · kept_scale   if the element is kept (kernels/include/dropout_mask.wgsl),
//            0                   otherwise;      kept_scale = (alpha / r) / (1 − p)
// With p = 0 nothing is dropped and out = x · alpha / r (inference, and the parity tests).
//
// Bindings:
//   @binding(0) params: { n, key, drop_below, kept_scale }
//   @binding(1) x:   array<f32> [n]      input (rows × in_features)
//   @binding(2) out: array<f32> [n]      output (=)
// Dispatch: one thread per element, grid1d(ceil(n / WG)).

//#include "grid.wgsl"
//#include "dropout_mask.wgsl"

// Threads per workgroup (one element each).
override WG: u32 = 256u;

struct Params {
  n: u32,
  key: u32,
  drop_below: u32,
  kept_scale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = linear_workgroup(wg, nwg) * WG + lid;
  if (i >= p.n) {
    return;
  }
  out[i] = select(0.0, x[i] * p.kept_scale, dropout_kept(p.key, i, p.drop_below));
}
