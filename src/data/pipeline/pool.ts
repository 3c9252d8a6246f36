/**
 * Runs `worker(i)` for i = 0..count-1 with at most `concurrency` in flight, in index order of
 * start. `shouldStop()` is checked before each start, so a fatal error drains the pool without
 * starting new work. Worker errors propagate (after the other in-flight workers finish).
 */
export async function runPool(count: number, concurrency: number, worker: (index: number) => Promise<void>, shouldStop: () => boolean = () => false): Promise<void> {
  let next = 0;
  let firstError: unknown;
  let failed = false;
  const lane = async () => {
    while (!failed && !shouldStop() && next < count) {
      const index = next++;
      try {
        await worker(index);
      } catch (error) {
        if (!failed) firstError = error;
        failed = true;
      }
    }
  };
  const lanes = Array.from({ length: Math.max(1, Math.min(concurrency, count)) }, lane);
  await Promise.all(lanes);
  if (failed) throw firstError;
}
