/**
 * Means with seeded bootstrap confidence intervals. The resampling unit is the question (a
 * single-turn question or a multi-turn interview): the judge's scores of different questions are
 * treated as independent draws, which is what the interval is about.
 */
import { MersenneTwister } from '../data/pipeline/random.ts';

export type Estimate = { mean: number; ci95: [number, number]; n: number };

function mean(xs: readonly number[]): number {
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/** The q-quantile of sorted values with linear interpolation (numpy's default). */
function quantile(sorted: readonly number[], q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

/**
 * The mean of the group means (each group, e.g. one character's questions, weighs the same), with
 * a percentile bootstrap 95% interval: each resample draws every group's questions with
 * replacement within the group. One group is the plain mean over questions. Groups without
 * scores are left out; with no scores at all the estimate is undefined.
 */
export function bootstrapMeanOfMeans(groups: readonly (readonly number[])[], resamples: number, seed: number): Estimate | undefined {
  const filled = groups.filter((g) => g.length > 0);
  if (filled.length === 0) return undefined;
  const point = mean(filled.map(mean));
  const rng = MersenneTwister.fromPythonSeed(seed);
  const stats: number[] = [];
  for (let b = 0; b < resamples; b++) {
    let total = 0;
    for (const g of filled) {
      let s = 0;
      for (let i = 0; i < g.length; i++) s += g[Math.floor(rng.random() * g.length)]!;
      total += s / g.length;
    }
    stats.push(total / filled.length);
  }
  stats.sort((a, b) => a - b);
  return { mean: point, ci95: [quantile(stats, 0.025), quantile(stats, 0.975)], n: filled.reduce((n, g) => n + g.length, 0) };
}
