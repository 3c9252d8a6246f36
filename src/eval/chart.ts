/**
 * A grouped bar chart with error bars as a standalone SVG (no dependencies): one group per
 * dimension, one bar per model side by side, the bar at the mean and the whisker over the interval.
 */

export type ChartSpec = {
  title: string;
  groups: readonly string[];
  series: readonly string[];
  value: (group: string, series: string) => { mean: number; lo: number; hi: number } | undefined;
  yMin: number;
  yMax: number;
};

const COLORS = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

export function barChartSvg(spec: ChartSpec): string {
  const barW = 18;
  const gap = 24;
  const groupW = spec.series.length * barW + gap;
  const left = 48;
  const top = 40;
  const plotH = 260;
  const legendH = 20 * Math.ceil(spec.series.length / 4);
  const width = Math.max(420, left + spec.groups.length * groupW + 20);
  const height = top + plotH + 40 + legendH + 10;
  const y = (v: number) => top + plotH - ((v - spec.yMin) / (spec.yMax - spec.yMin)) * plotH;
  const f = (n: number) => n.toFixed(1);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="13">${esc(spec.title)}</text>`,
  ];
  for (let v = Math.ceil(spec.yMin); v <= spec.yMax; v++) {
    parts.push(`<line x1="${left}" x2="${width - 10}" y1="${f(y(v))}" y2="${f(y(v))}" stroke="#ddd"/>`, `<text x="${left - 6}" y="${f(y(v) + 4)}" text-anchor="end">${v}</text>`);
  }
  spec.groups.forEach((g, gi) => {
    const x0 = left + gi * groupW + gap / 2;
    spec.series.forEach((s, si) => {
      const v = spec.value(g, s);
      if (!v) return;
      const x = x0 + si * barW;
      const cx = x + barW / 2;
      parts.push(
        `<rect x="${f(x + 1)}" y="${f(y(v.mean))}" width="${barW - 2}" height="${f(y(spec.yMin) - y(v.mean))}" fill="${COLORS[si % COLORS.length]}"><title>${esc(`${s}, ${g}: ${v.mean.toFixed(2)} [${v.lo.toFixed(2)}, ${v.hi.toFixed(2)}]`)}</title></rect>`,
        `<line x1="${f(cx)}" x2="${f(cx)}" y1="${f(y(v.lo))}" y2="${f(y(v.hi))}" stroke="black"/>`,
        `<line x1="${f(cx - 4)}" x2="${f(cx + 4)}" y1="${f(y(v.lo))}" y2="${f(y(v.lo))}" stroke="black"/>`,
        `<line x1="${f(cx - 4)}" x2="${f(cx + 4)}" y1="${f(y(v.hi))}" y2="${f(y(v.hi))}" stroke="black"/>`,
      );
    });
    parts.push(`<text x="${f(x0 + (spec.series.length * barW) / 2)}" y="${top + plotH + 16}" text-anchor="middle">${esc(g)}</text>`);
  });
  parts.push(`<line x1="${left}" x2="${width - 10}" y1="${top + plotH}" y2="${top + plotH}" stroke="black"/>`);
  spec.series.forEach((s, si) => {
    const lx = left + (si % 4) * 110;
    const ly = top + plotH + 36 + 20 * Math.floor(si / 4);
    parts.push(`<rect x="${lx}" y="${ly - 9}" width="10" height="10" fill="${COLORS[si % COLORS.length]}"/>`, `<text x="${lx + 14}" y="${ly}">${esc(s)}</text>`);
  });
  parts.push('</svg>', '');
  return parts.join('\n');
}
