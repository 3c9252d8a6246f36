/**
 * Plain-TypeScript reference of the KV scatter (kernels/kv_scatter_fwd.wgsl): a copy of each new
 * row r of rows [R, W] into cache [slots, Tmax, W] at row slot[r]·Tmax + pos[r]. Returns the new
 * cache; rows not named stay as they were.
 */
export function kvScatterForward(cache: ArrayLike<number>, rows: ArrayLike<number>, slot: ArrayLike<number>, pos: ArrayLike<number>, Tmax: number, W: number): Float64Array {
  const out = Float64Array.from(cache);
  for (let r = 0; r < slot.length; r++) {
    if (pos[r] >= Tmax) throw new Error(`row ${r}: position ${pos[r]} past the cache's ${Tmax} rows`);
    for (let c = 0; c < W; c++) out[(slot[r] * Tmax + pos[r]) * W + c] = rows[r * W + c];
  }
  return out;
}
