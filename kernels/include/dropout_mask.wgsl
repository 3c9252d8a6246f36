// The dropout mask of LoRA inputs, as a pure function of (key, element index): no mask is stored,
// the backward recomputes it. key mixes the run's seed with the step, micro-batch, pass, layer
// and module (src/ops/dropout.ts, dropoutKey); the reference is src/reference/dropout.ts.
//
// pcg_hash is the 32-bit PCG output permutation used as a hash (a bijection on u32 with full
// avalanche): state = v·747796405 + 2891336453; word = ((state >> ((state >> 28) + 4)) ^ state)
// · 277803737; result = (word >> 22) ^ word. Element i is dropped when pcg_hash(key ^ i) < drop_below
// (drop_below = round(p · 2^32), so 0 drops nothing).

fn pcg_hash(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}

fn dropout_kept(key: u32, i: u32, drop_below: u32) -> bool {
  return pcg_hash(key ^ i) >= drop_below;
}
