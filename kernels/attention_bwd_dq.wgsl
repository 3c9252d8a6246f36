// Causal attention backward, pass 2 of 3: dQ (FlashAttention-2 style: P is recomputed from the
// saved LSE, never stored). Owner-computes: each thread owns QR query rows of one (b, h), loops
// over the keys they see and writes their dQ slices, so no atomics and no second pass are needed.
//   P_j = exp(scale · q·k_j - LSE),  dP_j = dO·v_j,  dS_j = P_j (dP_j - D),  dQ = scale · Σ_j dS_j k_j
// Query t sits at position pos0 + t and sees keys 0 ..= pos0 + t (any pos0; training has pos0 = 0);
// query head h reads kv head h / (nH / nKV).
//
// Bindings:
//   @binding(0) params: { B, T, Tmax, pos0, nH, nKV, hd, scale }   (layout 'uuuuuuuf')
//   @binding(1) q:    array<f32> [B*T, nH*hd]       forward queries
//   @binding(2) k:    array<f32> [B, Tmax, nKV*hd]  forward keys
//   @binding(3) v:    array<f32> [B, Tmax, nKV*hd]  forward values
//   @binding(4) dout: array<f32> [B*T, nH*hd]       gradient wrt the forward output
//   @binding(5) lse:  array<f32> [B*T*nH]           from attention_fwd
//   @binding(6) dsum: array<f32> [B*T*nH]           D = rowsum(dO ∘ O), from attention_bwd_prep
//   @binding(7) dq:   array<f32> [B*T, nH*hd]       output (=)
// Requires hd <= MAX_HD (128), nH % nKV == 0, pos0 + T <= Tmax, QR <= QR_MAX (4).
// Dispatch: (ceil(T / (QB*QR)), nH, B) workgroups of QB threads; thread lid owns the queries
// wg.x*QB*QR + r*QB + lid, r < QR. QR > 1 lets each loaded key/value element serve QR queries
// (lavapipe, where loads bound the kernel: QB = 8, QR = 4); on a GPU QB = 64, QR = 1.
// All threads run the same key loop, up to the last key any of the workgroup's queries sees,
// masking (dS = 0) the keys past each query's own last one; keys are taken KB at a time, the
// last block padded by re-reading the workgroup's last key, so no row past pos0 + T - 1 is read.

// Per-thread arrays must have const (not override) sizes in WGSL.
const MAX_HD: u32 = 128u;
const QR_MAX: u32 = 4u;
const KB: u32 = 8u;

override QB: u32 = 64u;
override QR: u32 = 1u;

struct Params {
  B: u32,
  T: u32,
  Tmax: u32,
  pos0: u32,
  nH: u32,
  nKV: u32,
  hd: u32,
  scale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> dout: array<f32>;
@group(0) @binding(5) var<storage, read> lse: array<f32>;
@group(0) @binding(6) var<storage, read> dsum: array<f32>;
@group(0) @binding(7) var<storage, read_write> dq: array<f32>;

@compute @workgroup_size(QB)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t_wg = wg.x * QB * QR;
  if (t_wg >= p.T) {
    return;
  }
  let h = wg.y;
  let b = wg.z;
  let hd = min(p.hd, MAX_HD);
  let g = h / (p.nH / p.nKV);
  let q_stride = p.nH * p.hd;
  let kv_stride = p.nKV * p.hd;
  let kv_off = b * p.Tmax * kv_stride + g * p.hd;
  let last_wg = p.pos0 + min(p.T - 1u, t_wg + QB * QR - 1u);

  var qv: array<f32, QR_MAX * MAX_HD>;
  var gv: array<f32, QR_MAX * MAX_HD>;
  var acc: array<f32, QR_MAX * MAX_HD>;
  var row_lse: array<f32, QR_MAX>;
  var row_d: array<f32, QR_MAX>;
  var last: array<u32, QR_MAX>;
  for (var r = 0u; r < QR; r++) {
    // Queries past T compute on a clamped copy of query T - 1 and never write.
    let t = min(t_wg + r * QB + lid, p.T - 1u);
    last[r] = p.pos0 + t;
    let stat = (b * p.T + t) * p.nH + h;
    row_lse[r] = lse[stat];
    row_d[r] = dsum[stat];
    let q_off = (b * p.T + t) * q_stride + h * p.hd;
    for (var d = 0u; d < hd; d++) {
      qv[r * MAX_HD + d] = q[q_off + d] * p.scale;
      gv[r * MAX_HD + d] = dout[q_off + d];
    }
  }

  for (var s0 = 0u; s0 <= last_wg; s0 += KB) {
    var row: array<u32, KB>;
    for (var j = 0u; j < KB; j++) {
      row[j] = kv_off + min(s0 + j, last_wg) * kv_stride;
    }
    // Explicit zeros: Dawn (webgpu 0.6.2) on lavapipe does not re-zero a `var` declared without
    // an initializer on each loop iteration, as WGSL requires.
    var sc = array<f32, QR_MAX * KB>();
    var dp = array<f32, QR_MAX * KB>();
    for (var d = 0u; d < hd; d++) {
      var kd: array<f32, KB>;
      var vd: array<f32, KB>;
      for (var j = 0u; j < KB; j++) {
        kd[j] = k[row[j] + d];
        vd[j] = v[row[j] + d];
      }
      for (var r = 0u; r < QR; r++) {
        let qd = qv[r * MAX_HD + d];
        let gd = gv[r * MAX_HD + d];
        for (var j = 0u; j < KB; j++) {
          sc[r * KB + j] += qd * kd[j];
          dp[r * KB + j] += gd * vd[j];
        }
      }
    }
    var ds: array<f32, QR_MAX * KB>;
    for (var r = 0u; r < QR; r++) {
      for (var j = 0u; j < KB; j++) {
        let i = r * KB + j;
        ds[i] = select(0.0, exp(sc[i] - row_lse[r]) * (dp[i] - row_d[r]), s0 + j <= last[r]);
      }
    }
    for (var d = 0u; d < hd; d++) {
      var kd: array<f32, KB>;
      for (var j = 0u; j < KB; j++) {
        kd[j] = k[row[j] + d];
      }
      for (var r = 0u; r < QR; r++) {
        var a = acc[r * MAX_HD + d];
        for (var j = 0u; j < KB; j++) {
          a += ds[r * KB + j] * kd[j];
        }
        acc[r * MAX_HD + d] = a;
      }
    }
  }

  for (var r = 0u; r < QR; r++) {
    let t = t_wg + r * QB + lid;
    if (t < p.T) {
      let q_off = (b * p.T + t) * q_stride + h * p.hd;
      for (var d = 0u; d < hd; d++) {
        dq[q_off + d] = acc[r * MAX_HD + d] * p.scale;
      }
    }
  }
}
