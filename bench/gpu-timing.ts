/**
 * How the kernel benchmarks time our side: one measurement records `calls` identical dispatch
 * sequences in one encoder, submits once and waits with onSubmittedWorkDone, so per-submit
 * overhead does not dominate small shapes; the answer is seconds per call. The first measurement
 * after preparing is the warm-up (pipeline compilation, first-touch of the buffers).
 */
import type { GpuBuffer } from '../src/gpu/buffers.ts';
import type { Gpu } from '../src/gpu/device.ts';
import { Recorder } from '../src/gpu/kernels.ts';

/**
 * Calls per measurement of a matmul of `flops`: enough for ~0.2 GFLOP, so a small product is not
 * timed as one submit's overhead.
 */
export function matmulCalls(flops: number): number {
  return Math.max(1, Math.ceil(2e8 / flops));
}

/** A benchmark with its buffers and pipelines built, measured as many times as asked, then destroyed. */
export interface Prepared {
  /** Seconds per call, one measurement. */
  seconds(): Promise<number>;
  destroy(): void;
}

/**
 * Times `record` (one call's dispatches). `calls` fixed, or chosen from the warm-up to make one
 * measurement last about `targetSeconds` (at most 1000 calls).
 */
export async function prepareRecorded(gpu: Gpu, record: (rec: Recorder) => void, buffers: GpuBuffer[], opts: { calls?: number; targetSeconds?: number } = {}): Promise<Prepared> {
  const measure = async (calls: number) => {
    const t0 = performance.now();
    const rec = new Recorder(gpu, 'bench');
    for (let i = 0; i < calls; i++) record(rec);
    rec.submit();
    await gpu.settle(gpu.device.queue.onSubmittedWorkDone());
    return (performance.now() - t0) / 1000 / calls;
  };
  const first = await measure(1); // warm-up
  const calls = opts.calls ?? Math.max(1, Math.min(1000, Math.ceil((opts.targetSeconds ?? 0.05) / Math.max(first, 1e-6))));
  if (opts.calls !== undefined && opts.calls > 1) await measure(calls); // warm-up at the measured size too
  return {
    seconds: () => measure(calls),
    destroy: () => {
      for (const b of buffers) b.destroy();
    },
  };
}
