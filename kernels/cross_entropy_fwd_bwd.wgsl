// Token cross-entropy with the loss mask, fused with its gradient (HF causal-LM loss):
//   loss[r]       = logsumexp(logits[r, :]) - logits[r, target[r]]            (0 where target = -1)
//   dlogits[r, :] = (softmax(logits[r, :]) - onehot(target[r])) * grad_scale  (0 rows where target = -1)
// grad_scale = 1 / (number of target tokens in the micro-batch), so that sum_r loss[r] * grad_scale is
// the mean loss whose gradient this is. When WRITE_GRAD, dlogits OVERWRITES the logits in place
// (the logits are dead after the loss), so no second [R, V] buffer is needed.
// Logits come in row chunks (R * V * 4 bytes exceeds one binding for real vocabularies): this
// dispatch covers rows r < R of the chunk starting at element logits_offset; the targets and the
// loss of row r live at index target_offset + r of the full (all rows) arrays.
// Targets must lie in [-1, V).
//
// Bindings:
//   @binding(0) params: { R, V, logits_offset, target_offset, grad_scale }
//   @binding(1) logits:  array<f32> [.., V]  rows at logits_offset + r * V; overwritten with dlogits (=) when WRITE_GRAD
//   @binding(2) targets: array<i32> [..]     target token of row r at target_offset + r, -1 = no loss
//   @binding(3) loss:    array<f32> [..]     loss of row r at target_offset + r (=)
// Dispatch: one workgroup per row, grid1d(R) (row = wg.x + wg.y * num_workgroups.x). Each thread
// keeps an online (max, sum of exp) over a strided slice of the row; the pairs are merged in shared
// memory, then a second sweep writes the gradient.

//#include "grid.wgsl"

// Threads per row; a power of two (tree reduction).
override WG: u32 = 256u;
// Overwrite the logits with dlogits (training); false computes the loss only (evaluation).
override WRITE_GRAD: bool = true;

struct Params {
  R: u32,
  V: u32,
  logits_offset: u32,
  target_offset: u32,
  grad_scale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> logits: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<i32>;
@group(0) @binding(3) var<storage, read_write> loss: array<f32>;

// The lowest finite f32: a running max that starts here needs no infinities (which WGSL need not honour).
const LOWEST: f32 = -3.4028234663852886e38;

var<workgroup> part_max: array<f32, WG>;
var<workgroup> part_sum: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let row = linear_workgroup(wg, nwg);
  // No early return before the barriers: the whole workgroup must reach them (uniformity).
  let valid = row < p.R;
  var tgt = -1;
  if (valid) {
    tgt = targets[p.target_offset + row];
  }
  let has_loss = valid && tgt >= 0;
  let base = p.logits_offset + row * p.V;

  // Read before the barriers below, hence before any thread overwrites the row with its gradient.
  var target_logit = 0.0;
  if (has_loss && lid == 0u) {
    target_logit = logits[base + u32(tgt)];
  }

  var m = LOWEST;
  var s = 0.0;
  if (has_loss) {
    for (var c = lid; c < p.V; c += WG) {
      let v = logits[base + c];
      if (v > m) {
        s = s * exp(m - v) + 1.0;
        m = v;
      } else {
        s += exp(v - m);
      }
    }
  }
  part_max[lid] = m;
  part_sum[lid] = s;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) {
      let m1 = part_max[lid];
      let m2 = part_max[lid + stride];
      let mm = max(m1, m2);
      part_sum[lid] = part_sum[lid] * exp(m1 - mm) + part_sum[lid + stride] * exp(m2 - mm);
      part_max[lid] = mm;
    }
    workgroupBarrier();
  }
  let row_max = part_max[0];
  let row_sum = part_sum[0];

  if (valid && lid == 0u) {
    loss[p.target_offset + row] = select(0.0, row_max + log(row_sum) - target_logit, has_loss);
  }
  if (WRITE_GRAD && valid) {
    if (has_loss) {
      let scale = p.grad_scale / row_sum;
      let t = u32(tgt);
      for (var c = lid; c < p.V; c += WG) {
        let prob_scaled = exp(logits[base + c] - row_max) * scale;
        logits[base + c] = select(prob_scaled, prob_scaled - p.grad_scale, c == t);
      }
    } else {
      for (var c = lid; c < p.V; c += WG) {
        logits[base + c] = 0.0;
      }
    }
  }
}
