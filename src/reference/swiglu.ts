/**
 * Plain-TypeScript reference of the LLaMA MLP gate, SwiGLU: h = silu(g) · u elementwise, f64.
 * silu(g) = g · σ(g), σ(g) = 1 / (1 + e^-g). Shapes: g, u, h [rows, I] (flat, any length).
 */
function sigmoid(v: number): number {
  return 1 / (1 + Math.exp(-v));
}

export function swigluForward(g: ArrayLike<number>, u: ArrayLike<number>): Float64Array {
  const h = new Float64Array(g.length);
  for (let i = 0; i < g.length; i++) h[i] = g[i] * sigmoid(g[i]) * u[i];
  return h;
}

/**
 * Backward of h = g σ(g) u:
 *   du = dh · g σ(g)
 *   dg = dh · u · (σ(g) + g σ(g)(1 - σ(g)))      (d/dg of g σ(g))
 */
export function swigluBackward(dh: ArrayLike<number>, g: ArrayLike<number>, u: ArrayLike<number>) {
  const dg = new Float64Array(g.length);
  const du = new Float64Array(g.length);
  for (let i = 0; i < g.length; i++) {
    const s = sigmoid(g[i]);
    du[i] = dh[i] * g[i] * s;
    dg[i] = dh[i] * u[i] * (s + g[i] * s * (1 - s));
  }
  return { dg, du };
}
