// Logistic sigmoid 1 / (1 + e^-v), computed from exp(-|v|) only: it never overflows (WGSL need not
// honour infinities) and reaches the exact limits 0 and 1 for large |v|.
fn sigmoid(v: f32) -> f32 {
  let e = exp(-abs(v));
  return select(e / (1.0 + e), 1.0 / (1.0 + e), v >= 0.0);
}
