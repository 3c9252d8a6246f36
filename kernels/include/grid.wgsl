// Linear workgroup index for 1-D work spread over a 2-D dispatch grid (see `grid1d` in
// src/gpu/kernels.ts): x is capped at maxComputeWorkgroupsPerDimension (65535).
fn linear_workgroup(wg: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return wg.x + wg.y * nwg.x;
}
