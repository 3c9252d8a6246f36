/**
 * The report's charts, as plain SVG text (no dependency): horizontal bars of ratios on a log axis,
 * and a roofline-style log-log scatter of kernels under the machine's FMA and memory ceilings.
 */

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const fmt = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x >= 1 ? x.toFixed(2) : x.toPrecision(2));
const FONT = 'font-family="sans-serif" font-size="11"';
const TITLE = 'font-family="sans-serif" font-size="13" font-weight="bold"';

/** Powers of ten (and 2·, 5· between them when the range is narrow) within [lo, hi]. */
function logTicks(lo: number, hi: number): number[] {
  const out: number[] = [];
  const mults = Math.log10(hi / lo) <= 3 ? [1, 2, 5] : [1];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (const m of mults) {
      const v = m * 10 ** e;
      if (v >= lo * 0.999 && v <= hi * 1.001) out.push(v);
    }
  }
  return out;
}

export interface Bar {
  label: string;
  /** ours / peer; NaN draws no bar ("n/a"). */
  ratio: number;
}

/** Bars of ratios (ours / peer), log axis, a line at 1 (parity): green where we lead, orange where we trail. */
export function ratioBars(title: string, bars: Bar[]): string {
  const labelW = 330;
  const plotW = 420;
  const rowH = 16;
  const top = 40;
  const finite = bars.map((b) => b.ratio).filter((r) => Number.isFinite(r) && r > 0);
  const lo = 10 ** Math.floor(Math.log10(Math.min(0.5, ...finite)));
  const hi = 10 ** Math.ceil(Math.log10(Math.max(2, ...finite)));
  const x = (r: number) => labelW + (Math.log(r / lo) / Math.log(hi / lo)) * plotW;
  const height = top + bars.length * rowH + 30;
  const width = labelW + plotW + 60;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="18" ${TITLE}>${esc(title)}</text>`,
  ];
  for (const t of logTicks(lo, hi)) {
    parts.push(`<line x1="${x(t)}" y1="${top - 6}" x2="${x(t)}" y2="${top + bars.length * rowH}" stroke="#ddd"/>`);
    parts.push(`<text x="${x(t)}" y="${top - 9}" ${FONT} text-anchor="middle" fill="#555">${fmt(t)}×</text>`);
  }
  parts.push(`<line x1="${x(1)}" y1="${top - 6}" x2="${x(1)}" y2="${top + bars.length * rowH}" stroke="#333" stroke-width="1.5"/>`);
  bars.forEach((b, i) => {
    const y = top + i * rowH;
    parts.push(`<text x="${labelW - 6}" y="${y + 11}" ${FONT} text-anchor="end">${esc(b.label)}</text>`);
    if (!(Number.isFinite(b.ratio) && b.ratio > 0)) {
      parts.push(`<text x="${x(1) + 4}" y="${y + 11}" ${FONT} fill="#888">n/a</text>`);
      return;
    }
    const [a, c] = [x(Math.min(1, b.ratio)), x(Math.max(1, b.ratio))];
    parts.push(`<rect x="${a}" y="${y + 2}" width="${Math.max(1, c - a)}" height="${rowH - 4}" fill="${b.ratio >= 1 ? '#4a9d5b' : '#e08a3c'}"/>`);
    parts.push(`<text x="${c + 4}" y="${y + 11}" ${FONT}>${fmt(b.ratio)}</text>`);
  });
  parts.push(`<text x="${labelW}" y="${height - 8}" ${FONT} fill="#555">ratio ours / peer (log scale; right of the black line: we are faster)</text>`);
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

export interface RooflinePoint {
  label: string;
  /** flop per byte of nominal traffic. */
  intensity: number;
  gflops: number;
  series: 'ours' | 'peer';
}

/** Log-log: achieved GFLOP/s against arithmetic intensity, under min(peak, bandwidth × intensity). */
export function roofline(title: string, points: RooflinePoint[], peakGflops: number, bandwidthGBs: number | null, peerName: string): string {
  const W = 760;
  const H = 480;
  const L = 70;
  const R = 20;
  const T = 40;
  const B = 60;
  const xs = points.map((p) => p.intensity).filter((v) => v > 0);
  const ys = points.map((p) => p.gflops).filter((v) => v > 0);
  const xlo = 10 ** Math.floor(Math.log10(Math.min(0.1, ...xs)));
  const xhi = 10 ** Math.ceil(Math.log10(Math.max(100, ...xs)));
  const ylo = 10 ** Math.floor(Math.log10(Math.min(0.1, ...ys)));
  const yhi = 10 ** Math.ceil(Math.log10(Math.max(peakGflops * 1.5, ...ys)));
  const px = (v: number) => L + (Math.log(v / xlo) / Math.log(xhi / xlo)) * (W - L - R);
  const py = (v: number) => H - B - (Math.log(v / ylo) / Math.log(yhi / ylo)) * (H - T - B);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="18" ${TITLE}>${esc(title)}</text>`,
  ];
  for (const t of logTicks(xlo, xhi)) {
    parts.push(`<line x1="${px(t)}" y1="${T}" x2="${px(t)}" y2="${H - B}" stroke="#eee"/><text x="${px(t)}" y="${H - B + 14}" ${FONT} text-anchor="middle">${fmt(t)}</text>`);
  }
  for (const t of logTicks(ylo, yhi)) {
    parts.push(`<line x1="${L}" y1="${py(t)}" x2="${W - R}" y2="${py(t)}" stroke="#eee"/><text x="${L - 6}" y="${py(t) + 4}" ${FONT} text-anchor="end">${fmt(t)}</text>`);
  }
  parts.push(`<rect x="${L}" y="${T}" width="${W - L - R}" height="${H - T - B}" fill="none" stroke="#333"/>`);
  // The roof: bandwidth slope up to the ridge, then the FMA peak.
  const ridge = bandwidthGBs ? peakGflops / bandwidthGBs : xlo;
  if (bandwidthGBs) {
    const x0 = Math.max(xlo, ylo / bandwidthGBs);
    parts.push(`<line x1="${px(x0)}" y1="${py(bandwidthGBs * x0)}" x2="${px(ridge)}" y2="${py(peakGflops)}" stroke="#c33" stroke-width="1.5"/>`);
    parts.push(`<text x="${px(x0) + 6}" y="${py(bandwidthGBs * x0) - 6}" ${FONT} fill="#c33">memory ${fmt(bandwidthGBs)} GB/s (measured copy)</text>`);
  }
  parts.push(`<line x1="${px(Math.max(ridge, xlo))}" y1="${py(peakGflops)}" x2="${W - R}" y2="${py(peakGflops)}" stroke="#c33" stroke-width="1.5"/>`);
  parts.push(`<text x="${W - R - 4}" y="${py(peakGflops) - 6}" ${FONT} fill="#c33" text-anchor="end">FMA peak ${fmt(peakGflops)} GFLOP/s</text>`);
  for (const p of points) {
    if (!(p.intensity > 0 && p.gflops > 0)) continue;
    const [cx, cy] = [px(p.intensity), py(p.gflops)];
    parts.push(p.series === 'ours'
      ? `<circle cx="${cx}" cy="${cy}" r="3.5" fill="#2b6cb0"><title>${esc(`${p.label}: ${fmt(p.gflops)} GFLOP/s`)}</title></circle>`
      : `<circle cx="${cx}" cy="${cy}" r="3.5" fill="none" stroke="#777"><title>${esc(`${p.label}: ${fmt(p.gflops)} GFLOP/s`)}</title></circle>`);
  }
  parts.push(`<text x="${(L + W - R) / 2}" y="${H - 25}" ${FONT} text-anchor="middle">arithmetic intensity (flop / byte of nominal traffic)</text>`);
  parts.push(`<text x="14" y="${(T + H - B) / 2}" ${FONT} transform="rotate(-90 14 ${(T + H - B) / 2})" text-anchor="middle">GFLOP/s</text>`);
  parts.push(`<circle cx="${L + 10}" cy="${H - 10}" r="3.5" fill="#2b6cb0"/><text x="${L + 18}" y="${H - 6}" ${FONT}>wgpu-char</text>`);
  parts.push(`<circle cx="${L + 110}" cy="${H - 10}" r="3.5" fill="none" stroke="#777"/><text x="${L + 118}" y="${H - 6}" ${FONT}>${esc(peerName)}</text>`);
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
