// The Params of every matmul kernel (kernels/matmul_*.wgsl), in the order of MATMUL_PARAMS and
// matmulParams in src/ops/matmul.ts: sizes and offsets in elements, ldy the row stride of Y / dY.
struct Params {
  M: u32,
  N: u32,
  K: u32,
  x_offset: u32,
  w_offset: u32,
  y_offset: u32,
  ldy: u32,
}
