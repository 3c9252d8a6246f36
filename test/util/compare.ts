/**
 * allclose with a useful failure message: |a - b| <= atol + rtol * |b| elementwise, reporting
 * the max abs/rel error and the first offending pairs.
 */
import { expect } from 'vitest';
import type { Tolerance } from '../tolerances.ts';

export interface CompareStats {
  maxAbs: number;
  maxRel: number;
  bad: number;
}

export function compareArrays(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: Tolerance): CompareStats & { report: string } {
  if (actual.length !== expected.length) {
    return { maxAbs: Infinity, maxRel: Infinity, bad: 1, report: `length ${actual.length} != expected ${expected.length}` };
  }
  let maxAbs = 0;
  let maxRel = 0;
  let bad = 0;
  const first: string[] = [];
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i];
    const b = expected[i];
    const abs = Math.abs(a - b);
    const rel = abs / Math.max(Math.abs(b), 1e-30);
    if (!(abs <= tol.atol + tol.rtol * Math.abs(b))) {
      bad++;
      if (first.length < 5) first.push(`[${i}] got ${a} want ${b} (abs ${abs.toExponential(2)})`);
    }
    if (Number.isFinite(abs)) {
      maxAbs = Math.max(maxAbs, abs);
      if (Math.abs(b) > tol.atol) maxRel = Math.max(maxRel, rel);
    } else if (!(Number.isNaN(a) && Number.isNaN(b))) {
      maxAbs = Infinity;
    }
  }
  const report = `${bad}/${actual.length} outside atol=${tol.atol} rtol=${tol.rtol}; max abs ${maxAbs.toExponential(3)}, max rel ${maxRel.toExponential(3)}${first.length ? '\n  ' + first.join('\n  ') : ''}`;
  return { maxAbs, maxRel, bad, report };
}

/** Asserts allclose; on failure the message carries the first bad pairs and the max errors. */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: Tolerance, what = 'values'): CompareStats {
  const r = compareArrays(actual, expected, tol);
  expect(r.bad, `${what}: ${r.report}`).toBe(0);
  // Guard against vacuous comparisons (all-zero outputs compared with all-zero references).
  let nonZero = 0;
  for (let i = 0; i < expected.length; i++) if (expected[i] !== 0) nonZero++;
  expect(nonZero, `${what}: reference is all zeros, the test would prove nothing`).toBeGreaterThan(0);
  return r;
}
