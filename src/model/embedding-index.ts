/**
 * Host-side index for the race-free embedding backward (kernels/embedding_bwd.wgsl).
 *
 * WGSL has no float atomics, so rows with the same token cannot all add into dE's row at once.
 * The token ids are on the CPU anyway (the data loader made them), so we group rows by token here,
 * as CSR: the rows of token uniq[u] are rows[starts[u] .. starts[u+1]), and the kernel runs one
 * workgroup per unique token that owns (and alone writes) that row of dE.
 * Rows are listed in increasing order within each token, so the kernel's sums are deterministic.
 */
export interface EmbeddingGradIndex {
  /** Distinct token ids, increasing. [U] */
  uniq: Uint32Array;
  /** CSR offsets into `rows`, [U + 1]; starts[U] = number of rows. */
  starts: Uint32Array;
  /** Row indices grouped by token, [R]. */
  rows: Uint32Array;
}

export function buildEmbeddingGradIndex(ids: ArrayLike<number>): EmbeddingGradIndex {
  const R = ids.length;
  const order = new Uint32Array(R);
  for (let r = 0; r < R; r++) {
    const id = ids[r];
    if (!Number.isInteger(id) || id < 0 || id > 0xffffffff) throw new Error(`buildEmbeddingGradIndex: ids[${r}] = ${id} is not a token id`);
    order[r] = r;
  }
  // Stable by construction: ties broken by row index.
  order.sort((a, b) => ids[a] - ids[b] || a - b);
  let U = 0;
  for (let k = 0; k < R; k++) if (k === 0 || ids[order[k]] !== ids[order[k - 1]]) U++;
  const uniq = new Uint32Array(U);
  const starts = new Uint32Array(U + 1);
  let u = -1;
  for (let k = 0; k < R; k++) {
    if (k === 0 || ids[order[k]] !== ids[order[k - 1]]) {
      u++;
      uniq[u] = ids[order[k]];
      starts[u] = k;
    }
  }
  starts[U] = R;
  return { uniq, starts, rows: order };
}
