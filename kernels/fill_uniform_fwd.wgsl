// Synthetic weights generated on the GPU from a seed, so a 7B-sized model needs neither a file nor
// a host copy (the 7B-width tests and bench/7b.ts). Element i of a tensor (row-major, i < 2^32):
//   u = pcg_hash(key ^ i)                       (kernels/include/dropout_mask.wgsl)
//   d = f32(u >> 8) · 2^-24 − 0.5               exact in f32, in [−0.5, 0.5)
//   w = d · scale + shift                       matrices: shift 0, one f32 rounding (the product);
//                                                norm weights: scale 0, shift 1 (HF's init, exactly
//                                                1), so contracting the two into an FMA changes nothing
// key, scale and shift per tensor come from src/model/synthetic.ts; the reference is
// src/reference/fill_uniform.ts, and test/fixtures/make_llama7b_fixture.py draws the same values.
// The chunk [elem_start, elem_start + n) of the tensor is written at element out_offset of `w`.
//
// Bindings:
//   @binding(0) params: { n, elem_start, out_offset, key, scale, shift }
//   @binding(1) w: array<u32> [out_offset + n] f32 bits, or with W_BF16 bf16 packed two per word
//                (kernels/include/bf16.wgsl), rounded to nearest even (=)
// Dispatch: grid1d(ceil(n / WG)) for f32 (one element a thread); with W_BF16 one packed word a
// thread, grid1d(ceil(words / WG)), words = ceil((out_offset % 2 + n) / 2): a word only half in the
// chunk keeps its other half (read-modify-write, as the chunks of one buffer are filled one
// dispatch after another).

//#include "grid.wgsl"
//#include "dropout_mask.wgsl"
//#include "bf16.wgsl"

override WG: u32 = 256u;
override W_BF16: bool = false;

struct Params {
  n: u32,
  elem_start: u32,
  out_offset: u32,
  key: u32,
  scale: f32,
  shift: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> w: array<u32>;

fn value(i: u32) -> f32 {
  let d = f32(pcg_hash(p.key ^ (p.elem_start + i)) >> 8u) * (1.0 / 16777216.0) - 0.5;
  return d * p.scale + p.shift;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let k = linear_workgroup(wg, nwg) * WG + lid;
  if (!W_BF16) {
    if (k < p.n) {
      w[p.out_offset + k] = bitcast<u32>(value(k));
    }
    return;
  }
  // Word k of the chunk holds elements first + 2k and first + 2k + 1 (relative to the chunk).
  let first = -i32(p.out_offset & 1u);
  let words = (u32(i32(p.n) - first) + 1u) / 2u;
  if (k >= words) {
    return;
  }
  let word_index = (p.out_offset >> 1u) + k;
  var word = w[word_index];
  for (var h = 0u; h < 2u; h++) {
    let e = first + i32(2u * k + h);
    if (e >= 0 && u32(e) < p.n) {
      let bits = bf16_round_bits(value(u32(e)));
      word = select((word & 0xffff0000u) | bits, (word & 0x0000ffffu) | (bits << 16u), h == 1u);
    }
  }
  w[word_index] = word;
}
