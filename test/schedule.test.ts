import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { lrAt, lrLambda, warmupSteps, type Schedule, type ScheduleKind } from '../src/optim/schedule.ts';
import { TOL } from './tolerances.ts';
import { expectClose } from './util/compare.ts';

interface ScheduleFixture {
  kind: ScheduleKind;
  lr: number;
  warmup: number;
  total: number;
  lrs: number[];
}

const fixture = JSON.parse(readFileSync(new URL('./fixtures/adamw.json', import.meta.url), 'utf8')) as { schedules: ScheduleFixture[] };

describe('lrAt (HF schedules, update k uses lr_lambda(k))', () => {
  const cosine: Schedule = { lr: 2e-5, warmupSteps: 10, totalSteps: 240, kind: 'cosine' };

  it('warmup rises linearly from exactly 0 at the first update to the peak at update W', () => {
    expect(lrAt(0, cosine)).toBe(0);
    expect(lrAt(5, cosine)).toBeCloseTo(2e-5 * 0.5, 20);
    expect(lrAt(9, cosine)).toBeCloseTo((2e-5 * 9) / 10, 20);
    // The warmup boundary: progress 0, cos 0 = 1.
    expect(lrAt(10, cosine)).toBe(2e-5);
  });

  it('cosine follows 0.5·(1 + cos(π·progress)) and ends near 0 at the last update', () => {
    const mid = 10 + (240 - 10) / 2;
    expect(lrAt(mid, cosine)).toBeCloseTo(2e-5 * 0.5, 20);
    const last = 239;
    const progress = (last - 10) / (240 - 10);
    expect(lrAt(last, cosine)).toBeCloseTo(2e-5 * 0.5 * (1 + Math.cos(Math.PI * progress)), 20);
    expect(lrAt(last, cosine)).toBeGreaterThan(0);
    expect(lrAt(240, cosine)).toBeCloseTo(0, 20);
  });

  it('constant holds the peak after warmup; with no warmup the first update already has the peak', () => {
    const s: Schedule = { lr: 1e-3, warmupSteps: 4, totalSteps: 100, kind: 'constant' };
    expect(lrAt(0, s)).toBe(0);
    expect(lrAt(2, s)).toBe(5e-4);
    expect(lrAt(4, s)).toBe(1e-3);
    expect(lrAt(99, s)).toBe(1e-3);
    expect(lrAt(0, { ...s, warmupSteps: 0 })).toBe(1e-3);
    expect(lrAt(0, { ...cosine, warmupSteps: 0 })).toBe(2e-5);
  });

  it('linear decays to 0 at totalSteps', () => {
    const s: Schedule = { lr: 1, warmupSteps: 2, totalSteps: 10, kind: 'linear' };
    expect(lrAt(2, s)).toBe(1);
    expect(lrAt(6, s)).toBe(0.5);
    expect(lrAt(10, s)).toBe(0);
  });

  it('rejects fractional or negative steps', () => {
    expect(() => lrLambda(-1, cosine)).toThrow();
    expect(() => lrLambda(1.5, cosine)).toThrow();
  });

  for (const f of fixture.schedules) {
    it(`equals torch LambdaLR driven like the HF Trainer: ${f.kind}, warmup ${f.warmup}, total ${f.total}`, () => {
      const s: Schedule = { lr: f.lr, warmupSteps: f.warmup, totalSteps: f.total, kind: f.kind };
      const ours = f.lrs.map((_, k) => lrAt(k, s));
      expectClose(ours, f.lrs, TOL.schedule, `${f.kind} lrs`);
      expect(ours[0]).toBe(0);
    });
  }
});

describe('warmupSteps', () => {
  it('is ceil(ratio · total), as HF get_warmup_steps', () => {
    expect(warmupSteps(0.04, 240)).toBe(10); // 9.6 -> 10, the paper's worked example
    expect(warmupSteps(0.04, 25)).toBe(1); // exactly 1.0 stays 1
    expect(warmupSteps(0.04, 26)).toBe(2); // 1.04 -> 2
    expect(warmupSteps(0.04, 1)).toBe(1); // any positive ratio gives >= 1 step
    expect(warmupSteps(0, 240)).toBe(0);
  });

  it('an explicit step count wins over the ratio', () => {
    expect(warmupSteps(0.04, 240, 3)).toBe(3);
  });

  it('rejects ratios outside [0, 1]', () => {
    expect(() => warmupSteps(1.5, 10)).toThrow();
    expect(() => warmupSteps(-0.1, 10)).toThrow();
  });
});
