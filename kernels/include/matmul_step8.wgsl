// One step of the subgroup matmuls (the core in matmul_subgroup.wgsl and the vector-load kernels
// matmul_fwd_subgroup_vec4.wgsl, matmul_bwd_input_subgroup_vec2.wgsl): c + Σ_j a_j · b[j], in
// order j = 0..7, where a_j is lane j's `a` (subgroups of 8 lanes share their 8 values of the
// reduced dimension by broadcast, so no workgroup memory or barrier is needed). The fixed order
// keeps a row's bits independent of how many rows a workgroup holds. Must be called in uniform
// control flow.
fn step8(c: vec4<f32>, a: f32, b: array<vec4<f32>, 8>) -> vec4<f32> {
  var r = c;
  // subgroupBroadcast needs a constant lane index: one line per lane.
  r = fma(vec4<f32>(subgroupBroadcast(a, 0u)), b[0], r);
  r = fma(vec4<f32>(subgroupBroadcast(a, 1u)), b[1], r);
  r = fma(vec4<f32>(subgroupBroadcast(a, 2u)), b[2], r);
  r = fma(vec4<f32>(subgroupBroadcast(a, 3u)), b[3], r);
  r = fma(vec4<f32>(subgroupBroadcast(a, 4u)), b[4], r);
  r = fma(vec4<f32>(subgroupBroadcast(a, 5u)), b[5], r);
  r = fma(vec4<f32>(subgroupBroadcast(a, 6u)), b[6], r);
  r = fma(vec4<f32>(subgroupBroadcast(a, 7u)), b[7], r);
  return r;
}
