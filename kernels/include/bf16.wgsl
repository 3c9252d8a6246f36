// bf16 helpers. A bf16 tensor is stored as consecutive 16-bit values packed two per u32,
// little-endian: element i lives in word i / 2, in the low half when i is even. This is exactly
// the byte layout of a Uint16Array of bf16 bits (and of a safetensors BF16 tensor), so weights
// upload without repacking, for any element count (odd rows included).

// The f32 whose upper 16 bits are the bf16 element `i` of the packed word `word`.
fn bf16_unpack(word: u32, i: u32) -> f32 {
  return bitcast<f32>(select(word << 16u, word & 0xffff0000u, (i & 1u) == 1u));
}

// bf16 bits of `x`, rounded to nearest even (as torch's .to(torch.bfloat16)); NaN stays a quiet NaN.
fn bf16_round_bits(x: f32) -> u32 {
  let b = bitcast<u32>(x);
  if ((b & 0x7fffffffu) > 0x7f800000u) {
    return (b >> 16u) | 0x40u;
  }
  return (b + 0x7fffu + ((b >> 16u) & 1u)) >> 16u;
}
