/**
 * The one interface of the model's ops (src/ops/*.ts). An op is built once over its buffers and
 * fixed sizes (a weight's shape, heads, head dim, vocabulary) and recorded any number of times, in
 * any number of submits, with one shape of arguments: `record(rec, call)`, where `call` says which
 * rows this recording covers. Each op's doc says which fields of the call it reads; the rest are
 * ignored by it.
 *
 * One file per op, named like its kernels (kernels/<op>_<fwd|bwd>.wgsl), its plain-TypeScript
 * reference (src/reference/<op>.ts) and its test (test/<op>.test.ts), holding the forward and the
 * backward wrapper side by side.
 */
import type { Recorder } from '../gpu/kernels.ts';
import type { ParamBuffers } from '../model/param-buffers.ts';
import type { ParamEntry } from '../model/param-table.ts';

export interface OpCall {
  /** Rows this call processes: B·T tokens (for the embedding backward: distinct ids; for the repetition penalty: ids). */
  rows: number;
  /** Sequences and tokens per sequence (attention, RoPE), with rows = B·T. */
  B?: number;
  T?: number;
  /** Position of the first of the T tokens (0 for training and prefill). */
  pos0?: number;
  /** Rows per sequence in the K/V buffers: the cache length in decode; T (the default) for a batch processed whole. */
  kvStride?: number;
  /** First row of the forward's input / output in their buffers (default 0); a backward op reads the same rows of their gradients. */
  inRow?: number;
  outRow?: number;
  /** The op's one runtime scalar: dlogits scale (cross-entropy), sum scale, 1/temperature (softmax), penalty (repetition). */
  scale?: number;
  /** The random stream of this call (LoRA dropout masks): mixes the run's seed, step, micro-batch and pass (src/ops/dropout.ts). */
  key?: number;
}

export interface ModelOp {
  record(rec: Recorder, call: OpCall): void;
  /**
   * Records only what the backward reads of this op's work (LoRA's z), for a recompute that stops
   * before the op (src/model/layer.ts, `complete: false`). Absent: the backward needs nothing of it.
   */
  recordSaved?(rec: Recorder, call: OpCall): void;
}

/** B, T, pos0 and kvStride of a call over sequences, checked against its rows. */
export function sequences(call: OpCall, what: string): { B: number; T: number; pos0: number; kvStride: number } {
  const { B, T } = call;
  if (B === undefined || T === undefined || B * T !== call.rows) throw new Error(`${what}: a call needs B and T with B·T = rows (got B ${B}, T ${T}, rows ${call.rows})`);
  return { B, T, pos0: call.pos0 ?? 0, kvStride: call.kvStride ?? T };
}

/** Threads per workgroup of the one-thread-per-element kernels (their WG override). */
export const ELEMENTWISE_WG = 256;

/** A parameter tensor and the buffers (role: weights, gradients) it is read from. */
export interface WeightRef {
  entry: ParamEntry;
  buffers: ParamBuffers;
}
