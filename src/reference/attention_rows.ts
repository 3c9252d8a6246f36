/**
 * Plain-TypeScript reference of attention over independent rows (kernels/attention_rows_fwd.wgsl),
 * f64. Row r of q [R, nH·hd] is one query of the sequence in slot slot[r] at position pos[r]; it
 * attends to that slot's cache rows 0 ..= pos[r] of k, v [slots, Tmax, nKV·hd], exactly as
 * src/reference/attention.ts's forward does for one query (B = 1, T = 1, pos0 = pos[r]) over the
 * slot's own Tmax rows.
 */
import { attentionForward } from './attention.ts';

export interface AttentionRowsDims {
  Tmax: number;
  nH: number;
  nKV: number;
  hd: number;
  scale: number;
}

export function attentionRowsForward(q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>, slot: ArrayLike<number>, pos: ArrayLike<number>, d: AttentionRowsDims): Float64Array {
  const qw = d.nH * d.hd;
  const kvRows = d.Tmax * d.nKV * d.hd;
  const o = new Float64Array(slot.length * qw);
  for (let r = 0; r < slot.length; r++) {
    const slice = (a: ArrayLike<number>, from: number, n: number) => Array.prototype.slice.call(a, from, from + n) as number[];
    const one = attentionForward(slice(q, r * qw, qw), slice(k, slot[r] * kvRows, kvRows), slice(v, slot[r] * kvRows, kvRows), { B: 1, T: 1, Tmax: d.Tmax, pos0: pos[r], nH: d.nH, nKV: d.nKV, hd: d.hd, scale: d.scale });
    o.set(one.o, r * qw);
  }
  return o;
}
