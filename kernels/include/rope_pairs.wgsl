// RoPE's work split, shared by rope_fwd.wgsl and rope_bwd.wgsl: one thread per (b, t, head, i <
// hd/2). Sequence b, step t lives at buffer row b * seq_stride + row_offset + t and has position
// pos0 + t (Q: seq_stride = T, row_offset = 0; K cache [B, Tmax]: seq_stride = Tmax, row_offset = pos0).

struct Params {
  B: u32,
  T: u32,
  seq_stride: u32,
  row_offset: u32,
  pos0: u32,
  n_heads: u32,
  hd: u32,
}

// The elements thread `idx` rotates (lo = i, hi = i + hd/2 of its head) and its cos/sin table index.
struct RopePair {
  lo: u32,
  hi: u32,
  tab: u32,
}

// Threads with work: B * T * n_heads * hd/2.
fn rope_pair_count(prm: Params) -> u32 {
  return prm.B * prm.T * prm.n_heads * (prm.hd / 2u);
}

fn rope_pair(idx: u32, prm: Params) -> RopePair {
  let half = prm.hd / 2u;
  let per_row = prm.n_heads * half;
  let i = idx % half;
  let head = (idx / half) % prm.n_heads;
  let bt = idx / per_row;
  let t = bt % prm.T;
  let b = bt / prm.T;
  let row = b * prm.seq_stride + prm.row_offset + t;
  let lo = (row * prm.n_heads + head) * prm.hd + i;
  return RopePair(lo, lo + half, (prm.pos0 + t) * half + i);
}
