/**
 * Plain-TypeScript reference of RoPE on independent rows (kernels/rope_rows_fwd.wgsl), f64: each
 * row r of x [R, nHeads·hd] is the single token of its own sequence at position pos[r], rotated
 * exactly as src/reference/rope.ts rotates one token (B = 1, T = 1, pos0 = pos[r]).
 */
import { ropeForward } from './rope.ts';

export function ropeRowsForward(x: ArrayLike<number>, cos: ArrayLike<number>, sin: ArrayLike<number>, pos: ArrayLike<number>, nHeads: number, hd: number): Float64Array {
  const width = nHeads * hd;
  const out = new Float64Array(pos.length * width);
  for (let r = 0; r < pos.length; r++) {
    const row = Array.prototype.slice.call(x, r * width, (r + 1) * width) as number[];
    out.set(ropeForward(row, cos, sin, { B: 1, T: 1, nHeads, hd, pos0: pos[r] }), r * width);
  }
  return out;
}
