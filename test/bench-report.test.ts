/**
 * The pure parts of `npm run bench` (bench/report.ts), no GPU or peer needed: the FMA-peak
 * derivation from /proc/cpuinfo-style facts, and the SVG writer's output (well-formed enough for a
 * browser: no attribute twice in a tag, text escaped, one bar per row, a roof under every point).
 */
import { describe, expect, it } from 'vitest';
import { fmaPeak, type CpuInfo } from '../bench/machine.ts';
import { median } from '../bench/stats.ts';
import { ratioBars, roofline } from '../bench/svg.ts';

const cpu = (flags: string[], cores = 2, ghz = 2.6): CpuInfo => ({ model: 'test CPU', cores, ghz, ghzSource: 'test', flags });

/** Every tag's attribute names, so a repeated one (which browsers refuse to render) shows. */
function duplicateAttributes(svg: string): string[] {
  const bad: string[] = [];
  for (const tag of svg.match(/<[a-z]+\s[^>]*>/g) ?? []) {
    const names = [...tag.matchAll(/\s([a-z-]+)="/g)].map((m) => m[1]);
    if (new Set(names).size !== names.length) bad.push(tag);
  }
  return bad;
}

describe('bench: machine facts', () => {
  it('derives the f32 FMA peak as cores × GHz × lanes × units × 2, lanes from the flags', () => {
    const avx512 = fmaPeak(cpu(['fma', 'avx2', 'avx512f']));
    expect(avx512.gflops).toBeCloseTo(2 * 2.6 * 16 * 2 * 2, 6);
    expect(avx512.derivation).toContain('16 f32 lanes (AVX-512');
    expect(avx512.derivation).toContain('(assumed)');
    expect(fmaPeak(cpu(['fma', 'avx2']), 1).gflops).toBeCloseTo(2 * 2.6 * 8 * 1 * 2, 6);
    expect(fmaPeak(cpu(['sse4_2']), undefined).gflops).toBeCloseTo(2 * 2.6 * 4 * 1 * 2, 6);
  });

  it('takes the median of odd and even counts', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
  });
});

describe('bench: SVG charts', () => {
  it('draws one bar per finite ratio, n/a for the rest, with escaped labels', () => {
    const svg = ratioBars('a <title> & more', [{ label: 'M=1 <fwd>', ratio: 2 }, { label: 'b', ratio: 0.05 }, { label: 'c', ratio: NaN }]);
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(duplicateAttributes(svg)).toEqual([]);
    expect(svg).toContain('M=1 &lt;fwd&gt;');
    expect(svg).toContain('a &lt;title&gt; &amp; more');
    expect(svg.match(/<rect x=/g)?.length).toBe(2);
    expect(svg).toContain('>n/a<');
  });

  it('puts every roofline point below the plot top and names both ceilings', () => {
    const svg = roofline('roof', [
      { label: 'mm', intensity: 100, gflops: 10, series: 'ours' },
      { label: 'mm', intensity: 100, gflops: 50, series: 'peer' },
      { label: 'ew', intensity: 0.2, gflops: 0.5, series: 'ours' },
    ], 333, 10, 'PyTorch');
    expect(duplicateAttributes(svg)).toEqual([]);
    expect(svg).toContain('FMA peak 333 GFLOP/s');
    expect(svg).toContain('memory 10.0 GB/s');
    const ys = [...svg.matchAll(/<circle cx="[\d.]+" cy="([\d.]+)"/g)].map((m) => Number(m[1]));
    expect(ys.length).toBe(5); // three points and two legend marks
    for (const y of ys) expect(y).toBeGreaterThan(40);
  });
});
