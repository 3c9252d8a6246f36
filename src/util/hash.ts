/**
 * The PCG output permutation used as a 32-bit hash (a bijection on u32 with full avalanche), in
 * exact integer arithmetic: the host side of kernels/include/dropout_mask.wgsl (which spells out the
 * same constants), used to mix dropout keys and by the dropout reference.
 */
export function pcgHash(v: number): number {
  const state = (Math.imul(v >>> 0, 747796405) + 2891336453) >>> 0;
  const word = Math.imul(((state >>> ((state >>> 28) + 4)) ^ state) >>> 0, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

/** The drop threshold of probability p on a u32 hash: round(p · 2^32), at most 2^32 − 1. */
export function dropBelowOf(p: number): number {
  return Math.min(0xffffffff, Math.round(p * 2 ** 32));
}
