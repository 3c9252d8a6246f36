// Causal attention backward, pass 3 of 3: dK and dV (FlashAttention-2 style: P is recomputed
// from the saved LSE, never stored). Owner-computes: each thread owns SR key rows of one (b, kv
// head g) and loops over every query that sees them — all nH/nKV query heads of the GQA group and
// the queries t with pos0 + t >= s — writing their dK/dV slices: no atomics, no second pass.
//   P = exp(scale · q_t·k_s - LSE_t),  dV_s = Σ P dO_t,  dS = P (dO_t·v_s - D_t),  dK_s = scale · Σ dS q_t
// Cache rows that no query sees (pos0 + T <= s < Tmax) get dK = dV = 0. Any pos0 works
// (training has pos0 = 0, Tmax = T).
//
// Bindings:
//   @binding(0) params: { B, T, Tmax, pos0, nH, nKV, hd, scale }   (layout 'uuuuuuuf')
//   @binding(1) q:    array<f32> [B*T, nH*hd]       forward queries
//   @binding(2) k:    array<f32> [B, Tmax, nKV*hd]  forward keys
//   @binding(3) v:    array<f32> [B, Tmax, nKV*hd]  forward values
//   @binding(4) dout: array<f32> [B*T, nH*hd]       gradient wrt the forward output
//   @binding(5) lse:  array<f32> [B*T*nH]           from attention_fwd
//   @binding(6) dsum: array<f32> [B*T*nH]           D = rowsum(dO ∘ O), from attention_bwd_prep
//   @binding(7) dk:   array<f32> [B, Tmax, nKV*hd]  output (=), every row written
//   @binding(8) dv:   array<f32> [B, Tmax, nKV*hd]  output (=), every row written
// Requires hd <= MAX_HD (128), nH % nKV == 0, pos0 + T <= Tmax, SR <= SR_MAX (4).
// Dispatch: (ceil(Tmax / (SB*SR)), nKV, B) workgroups of SB threads; thread lid owns the key rows
// wg.x*SB*SR + r*SB + lid, r < SR. SR > 1 lets each loaded query/gradient element serve SR keys
// (lavapipe, where loads bound the kernel: SB = 8, SR = 4); on a GPU SB = 64, SR = 1.
// All threads run the same query loop, from the first query that sees the workgroup's first key,
// masking (P = dS = 0) the queries that do not see a thread's own key; queries are taken KB at a
// time, the last block padded by re-reading query T - 1.

// Per-thread arrays must have const (not override) sizes in WGSL.
const MAX_HD: u32 = 128u;
const SR_MAX: u32 = 4u;
const KB: u32 = 8u;

override SB: u32 = 64u;
override SR: u32 = 1u;

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
@group(0) @binding(7) var<storage, read_write> dk: array<f32>;
@group(0) @binding(8) var<storage, read_write> dv: array<f32>;

@compute @workgroup_size(SB)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let s_wg = wg.x * SB * SR;
  if (s_wg >= p.Tmax) {
    return;
  }
  let g = wg.y;
  let b = wg.z;
  let hd = min(p.hd, MAX_HD);
  let q_stride = p.nH * p.hd;
  let kv_stride = p.nKV * p.hd;
  let rep = p.nH / p.nKV;

  var kv: array<f32, SR_MAX * MAX_HD>;
  var vv: array<f32, SR_MAX * MAX_HD>;
  var dk_acc: array<f32, SR_MAX * MAX_HD>;
  var dv_acc: array<f32, SR_MAX * MAX_HD>;
  // First query that sees key s: t = max(s, pos0) - pos0 (>= T when none does).
  var t_min: array<u32, SR_MAX>;
  for (var r = 0u; r < SR; r++) {
    // Rows past the cache or unseen are loaded from a clamped, seen row and never contribute.
    let s = min(s_wg + r * SB + lid, min(p.Tmax, p.pos0 + p.T) - 1u);
    t_min[r] = max(s_wg + r * SB + lid, p.pos0) - p.pos0;
    let kv_off = (b * p.Tmax + s) * kv_stride + g * p.hd;
    for (var d = 0u; d < hd; d++) {
      kv[r * MAX_HD + d] = k[kv_off + d] * p.scale;
      vv[r * MAX_HD + d] = v[kv_off + d];
    }
  }

  let t_first = max(s_wg, p.pos0) - p.pos0;
  let t_last = p.T - 1u;
  for (var h = g * rep; h < (g + 1u) * rep; h++) {
    for (var t0 = t_first; t0 <= t_last; t0 += KB) {
      var row: array<u32, KB>;
      var lse_j: array<f32, KB>;
      var d_j: array<f32, KB>;
      for (var j = 0u; j < KB; j++) {
        let t = min(t0 + j, t_last);
        row[j] = (b * p.T + t) * q_stride + h * p.hd;
        lse_j[j] = lse[(b * p.T + t) * p.nH + h];
        d_j[j] = dsum[(b * p.T + t) * p.nH + h];
      }
      // Explicit zeros: Dawn (webgpu 0.6.2) on lavapipe does not re-zero a `var` declared
      // without an initializer on each loop iteration, as WGSL requires.
      var sc = array<f32, SR_MAX * KB>();
      var dp = array<f32, SR_MAX * KB>();
      for (var d = 0u; d < hd; d++) {
        var qd: array<f32, KB>;
        var gd: array<f32, KB>;
        for (var j = 0u; j < KB; j++) {
          qd[j] = q[row[j] + d];
          gd[j] = dout[row[j] + d];
        }
        for (var r = 0u; r < SR; r++) {
          let kd = kv[r * MAX_HD + d];
          let vd = vv[r * MAX_HD + d];
          for (var j = 0u; j < KB; j++) {
            sc[r * KB + j] += kd * qd[j];
            dp[r * KB + j] += vd * gd[j];
          }
        }
      }
      var pr: array<f32, SR_MAX * KB>;
      var ds: array<f32, SR_MAX * KB>;
      for (var r = 0u; r < SR; r++) {
        for (var j = 0u; j < KB; j++) {
          let i = r * KB + j;
          let seen = t0 + j >= t_min[r] && t0 + j <= t_last;
          pr[i] = select(0.0, exp(sc[i] - lse_j[j]), seen);
          ds[i] = pr[i] * (dp[i] - d_j[j]);
        }
      }
      for (var d = 0u; d < hd; d++) {
        var qd: array<f32, KB>;
        var gd: array<f32, KB>;
        for (var j = 0u; j < KB; j++) {
          qd[j] = q[row[j] + d];
          gd[j] = dout[row[j] + d];
        }
        for (var r = 0u; r < SR; r++) {
          var a_k = dk_acc[r * MAX_HD + d];
          var a_v = dv_acc[r * MAX_HD + d];
          for (var j = 0u; j < KB; j++) {
            a_k += ds[r * KB + j] * qd[j];
            a_v += pr[r * KB + j] * gd[j];
          }
          dk_acc[r * MAX_HD + d] = a_k;
          dv_acc[r * MAX_HD + d] = a_v;
        }
      }
    }
  }

  for (var r = 0u; r < SR; r++) {
    let s = s_wg + r * SB + lid;
    if (s < p.Tmax) {
      let kv_off = (b * p.Tmax + s) * kv_stride + g * p.hd;
      for (var d = 0u; d < hd; d++) {
        dk[kv_off + d] = dk_acc[r * MAX_HD + d] * p.scale;
        dv[kv_off + d] = dv_acc[r * MAX_HD + d];
      }
    }
  }
}
